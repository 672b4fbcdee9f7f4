package proxy

import (
	"sync"
	"sync/atomic"
)

// Load counts, per component, the requests that enter the cluster through this proxy, for
// the heartbeats that feed autoscaling. Requests forwarded here by another node's proxy are
// not counted again: the node they entered through counts them.
//
// Counting is on every request's path, so it takes no lock and allocates nothing once a
// component has been seen: a lock-free map lookup and three atomic operations.
type Load struct {
	m sync.Map // component name → *compLoad
}

type compLoad struct {
	inFlight, peak atomic.Int64
	requests       atomic.Uint64
}

// LoadSample is one component's load over one interval.
type LoadSample struct {
	PeakInFlight int64  // the most requests in flight at once
	Requests     uint64 // requests started
}

// NewLoad returns an empty Load.
func NewLoad() *Load { return &Load{} }

// begin counts a request in flight until end is called on what it returns.
func (l *Load) begin(component string) *compLoad {
	v, ok := l.m.Load(component)
	if !ok {
		v, _ = l.m.LoadOrStore(component, new(compLoad))
	}
	c := v.(*compLoad)
	n := c.inFlight.Add(1)
	c.requests.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return c
}

// end ends a request counted by begin.
func (c *compLoad) end() { c.inFlight.Add(-1) }

// Take returns each component's load since the last Take and starts a new interval.
// Components idle over the whole interval are left out. A component's counter is kept once
// seen (one small entry per routed component name), so a request counted concurrently with
// Take is never lost.
func (l *Load) Take() map[string]LoadSample {
	out := map[string]LoadSample{}
	l.m.Range(func(k, v any) bool {
		c := v.(*compLoad)
		reqs := c.requests.Swap(0)
		peak := c.peak.Swap(c.inFlight.Load())
		if reqs == 0 && peak == 0 {
			return true
		}
		out[k.(string)] = LoadSample{PeakInFlight: peak, Requests: reqs}
		return true
	})
	return out
}
