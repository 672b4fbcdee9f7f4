package proxy

import (
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
	s.requests.WithLabelValues(component, classes[class]).Inc()
	s.latency.WithLabelValues(component).Observe(d.Seconds())

	if s.rec != nil {
		s.rec.Record(component, status, d)
	}
}
