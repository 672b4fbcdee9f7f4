package testkit

import (
	"sync"
	"testing"
	"time"
)

// Poll is how long Eventually waits for an event before it checks anyway: the fallback for
// conditions no event announces (an HTTP answer, a file written).
var Poll = 100 * time.Millisecond

// minGap keeps a storm of events from turning Eventually into a busy loop.
const minGap = 5 * time.Millisecond

// events wakes every waiter at once: wait returns a channel closed by the next Fire.
var events struct {
	mu sync.Mutex
	ch chan struct{}
}

func wait() <-chan struct{} {
	events.mu.Lock()
	defer events.mu.Unlock()
	if events.ch == nil {
		events.ch = make(chan struct{})
	}
	return events.ch
}

// Fire wakes every Eventually waiting in this process (hashicorp/raft's WaitEventChan
// style): test clusters call it when a node's replicated state or leadership changes.
func Fire() {
	events.mu.Lock()
	defer events.mu.Unlock()
	if events.ch != nil {
		close(events.ch)
		events.ch = nil
	}
}

// Eventually checks f until it returns nil, again at every Fire and at least every Poll
// (sooner at first: after 5 ms, then twice as long each time up to Poll, for conditions no
// event announces that hold soon), and fails the test with f's last error once the timeout
// passes.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.NewTimer(Poll)
	defer timer.Stop()
	poll := minGap
	for {
		wake := wait() // taken before the check: an event during f is not missed
		checked := time.Now()
		err := f()
		if err == nil {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		timer.Reset(min(left, poll))
		poll = min(2*poll, Poll)
		select {
		case <-wake:
		case <-timer.C:
		}
		if gap := time.Since(checked); gap < minGap {
			time.Sleep(minGap - gap) // a rate limit between checks, not a wait for a condition
		}
	}
}
