package proxy

import "sync"

// Load counts, per component, the requests that enter the cluster through this proxy, for
// the heartbeats that feed autoscaling. Requests forwarded here by another node's proxy are
// not counted again: the node they entered through counts them.
type Load struct {
	mu sync.Mutex
	m  map[string]*compLoad
}

type compLoad struct {
	inFlight, peak int64
	requests       uint64
}

// LoadSample is one component's load over one interval.
type LoadSample struct {
	PeakInFlight int64  // the most requests in flight at once
	Requests     uint64 // requests started
}

// NewLoad returns an empty Load.
func NewLoad() *Load { return &Load{m: map[string]*compLoad{}} }

// begin counts a request in flight until the returned func is called.
func (l *Load) begin(component string) func() {
	l.mu.Lock()
	c := l.m[component]
	if c == nil {
		c = &compLoad{}
		l.m[component] = c
	}
	c.inFlight++
	c.requests++
	c.peak = max(c.peak, c.inFlight)
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		c.inFlight--
		l.mu.Unlock()
	}
}

// Take returns each component's load since the last Take and starts a new interval.
// Components idle over the whole interval are left out.
func (l *Load) Take() map[string]LoadSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]LoadSample{}
	for name, c := range l.m {
		if c.requests == 0 && c.peak == 0 {
			if c.inFlight == 0 {
				delete(l.m, name)
			}
			continue
		}
		out[name] = LoadSample{PeakInFlight: c.peak, Requests: c.requests}
		c.peak, c.requests = c.inFlight, 0
	}
	return out
}
