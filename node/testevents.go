package node

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/internal/testkit"
)

// feedTestEvents wakes Eventually (testkit.Fire) on n's replicated-state changes and on
// its Raft state and leader changes, until n stops: tests wait on events, not on a tight
// poll.
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
			testkit.Fire()
		}
	}()
}

// Eventually is testkit.Eventually: f is checked again at every state or leadership change
// of a test node, at least every testkit.Poll, until the timeout.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	testkit.Eventually(t, timeout, f)
}
