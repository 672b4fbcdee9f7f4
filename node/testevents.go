package node

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Tests wait on events, not on a tight poll: every test node feeds testEvents when its
// replicated state changes or its Raft state or leader changes (hashicorp/raft's
// WaitEventChan style), and Eventually re-checks its condition on each event. A slow
// fallback poll covers conditions no event announces (an HTTP answer, a file written).

// eventuallyPoll is how long Eventually waits for an event before it checks anyway.
var eventuallyPoll = 100 * time.Millisecond

// eventuallyMinGap keeps a storm of writes from turning Eventually into a busy loop.
const eventuallyMinGap = 5 * time.Millisecond

// broadcast wakes every waiter at once: wait returns a channel closed by the next fire.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

var testEvents broadcast

// feedTestEvents fires testEvents on n's state and leadership changes until n stops.
func (n *Node) feedTestEvents() {
	obs := make(chan raft.Observation, 16)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	n.raft.r.RegisterObserver(o)
	go func() {
		defer n.raft.r.DeregisterObserver(o)
		for {
			changed, _ := n.Store().Changed()
			select {
			case <-changed:
			case <-obs:
			case <-n.ctx.Done():
				return
			}
			testEvents.fire()
		}
	}()
}

// Eventually checks f until it returns nil, again on every state or leadership change of
// a test node (and at least every eventuallyPoll), and fails the test with f's last error
// once the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.NewTimer(eventuallyPoll)
	defer timer.Stop()
	for {
		wake := testEvents.wait() // taken before the check: an event during f is not missed
		checked := time.Now()
		err := f()
		if err == nil {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		timer.Reset(min(left, eventuallyPoll))
		select {
		case <-wake:
		case <-timer.C:
		}
		if gap := time.Since(checked); gap < eventuallyMinGap {
			time.Sleep(eventuallyMinGap - gap) // a rate limit between checks, not a wait for a condition
		}
	}
}
