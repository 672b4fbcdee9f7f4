package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Recorder keeps the time series the console graphs (observe.Rollups).
type Recorder interface {
	Record(component string, status int, d time.Duration)
}

// Stats counts what the proxy answers: Prometheus metrics, and each request handed to a
// Recorder for the console's history.
type Stats struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	rec      Recorder
	series   sync.Map // component name → *componentSeries
}

// componentSeries is a component's labelled metrics, looked up once: finding a series by its
// label values hashes them and takes the vector's lock, on every request.
// A class's counter is made on its first request, so that /metrics lists only classes seen.
type componentSeries struct {
	requests [len(classes)]atomic.Pointer[prometheus.Counter]
	latency  prometheus.Observer
}

// NewStats registers the proxy's metrics with reg; rec (may be nil) gets every request.
func NewStats(reg prometheus.Registerer, rec Recorder) *Stats {
	s := &Stats{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "v9_proxy_requests_total",
			Help: "Requests answered by this node's proxy, by component and status class.",
		}, []string{"component", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "v9_proxy_request_duration_seconds",
			Help:    "Time to answer a request through this node's proxy.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"component"}),
		rec: rec,
	}
	reg.MustRegister(s.requests, s.latency)
	return s
}

var classes = [6]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Observe counts one request.
func (s *Stats) Observe(component string, status int, d time.Duration) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 5
	}
	cs := s.seriesOf(component)
	c := cs.requests[class].Load()
	if c == nil {
		counter := s.requests.WithLabelValues(component, classes[class])
		c = &counter
		cs.requests[class].Store(c)
	}
	(*c).Inc()
	cs.latency.Observe(d.Seconds())

	if s.rec != nil {
		s.rec.Record(component, status, d)
	}
}

func (s *Stats) seriesOf(component string) *componentSeries {
	if cs, ok := s.series.Load(component); ok {
		return cs.(*componentSeries)
	}
	cs := &componentSeries{latency: s.latency.WithLabelValues(component)}
	got, _ := s.series.LoadOrStore(component, cs)
	return got.(*componentSeries)
}
