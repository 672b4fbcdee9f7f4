package proxy

import (
	"context"
	"sync"
	"time"
)

// gates keeps one gate per component: a bounded number of requests in flight on this node
// and a bounded queue in front of them, so that one flooded component gets its own 429s
// while the others keep their latency.
type gates struct {
	wait time.Duration // the longest a request waits in the queue
	m    sync.Map      // component -> *gate
}

// gate is one component's bound. Its size is fixed; a new size makes a new gate (requests
// holding a place in the old one give it back there).
type gate struct {
	slots chan struct{} // one token per request in flight
	mu    sync.Mutex
	queue int // requests waiting now
	limit int // the most that may wait
}

// get returns the component's gate for size requests in flight (and as many queued).
func (g *gates) get(component string, size int) *gate {
	if v, ok := g.m.Load(component); ok && cap(v.(*gate).slots) == size {
		return v.(*gate)
	}
	ng := &gate{slots: make(chan struct{}, size), limit: size}
	g.m.Store(component, ng)
	return ng
}

// enter takes a place in flight, waiting in the queue for at most wait (or until ctx
// ends); false when the queue is full or the wait ran out. release gives the place back.
func (gt *gate) enter(ctx context.Context, wait time.Duration) (release func(), ok bool) {
	select {
	case gt.slots <- struct{}{}:
		return gt.release, true
	default:
	}
	gt.mu.Lock()
	if gt.queue >= gt.limit {
		gt.mu.Unlock()
		return nil, false
	}
	gt.queue++
	gt.mu.Unlock()
	defer func() {
		gt.mu.Lock()
		gt.queue--
		gt.mu.Unlock()
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case gt.slots <- struct{}{}:
		return gt.release, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

func (gt *gate) release() { <-gt.slots }
