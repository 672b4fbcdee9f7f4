package proxy

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Bucket sizes of the time series the console graphs: 10 s buckets for 24 h.
const (
	BucketSeconds = 10
	BucketCount   = 24 * 60 * 60 / BucketSeconds
)

// Bucket is one 10-second slot of a component's traffic on this node.
type Bucket struct {
	Start        int64 // unix seconds
	Requests     uint64
	Status       [6]uint64 // index 1..5 = 1xx..5xx
	LatencySumMs float64
	LatencyMaxMs float64
}

// Stats keeps per-component counters on one node: Prometheus metrics and a ring of buckets.
type Stats struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	now      func() time.Time

	mu    sync.Mutex
	rings map[string]*[BucketCount]Bucket
}

// NewStats registers the proxy's metrics with reg.
func NewStats(reg prometheus.Registerer) *Stats {
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
		now:   time.Now,
		rings: map[string]*[BucketCount]Bucket{},
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

	t := s.now().Unix()
	start := t - t%BucketSeconds
	ms := float64(d.Microseconds()) / 1000
	s.mu.Lock()
	defer s.mu.Unlock()
	ring, ok := s.rings[component]
	if !ok {
		ring = new([BucketCount]Bucket)
		s.rings[component] = ring
	}
	b := &ring[(start/BucketSeconds)%BucketCount]
	if b.Start != start {
		*b = Bucket{Start: start}
	}
	b.Requests++
	b.Status[class]++
	b.LatencySumMs += ms
	b.LatencyMaxMs = max(b.LatencyMaxMs, ms)
}

// Series returns the last `minutes` of a component's buckets, oldest first, with empty
// buckets filled in.
func (s *Stats) Series(component string, minutes int) []Bucket {
	n := min(max(minutes, 1)*60/BucketSeconds, BucketCount)
	t := s.now().Unix()
	last := t - t%BucketSeconds
	out := make([]Bucket, n)
	s.mu.Lock()
	defer s.mu.Unlock()
	ring := s.rings[component]
	for i := range out {
		start := last - int64(n-1-i)*BucketSeconds
		out[i] = Bucket{Start: start}
		if ring != nil {
			if b := ring[(start/BucketSeconds)%BucketCount]; b.Start == start {
				out[i] = b
			}
		}
	}
	return out
}
