package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
)

// TestApplyForwardedWritesShareEntries sends creates concurrently to a follower, which
// forwards them to the leader: the leader's group commit puts several in one Raft entry
// (they share its index), yet each gets its own component, and all are in the state of every
// node.
func TestApplyForwardedWritesShareEntries(t *testing.T) {
	c := NewTestCluster(t, 3)
	f := c.Follower(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const writers = 48
	resps := make([]*componentv1.CreateResponse, writers)
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resps[i], errs[i] = createComponent(ctx, f, fmt.Sprintf("fwd-%02d", i))
		}()
	}
	close(start)
	wg.Wait()
	entries := map[uint64]bool{}
	ids := map[string]bool{}
	var last uint64
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("create fwd-%02d through follower %s: %v", i, f.ID(), errs[i])
		}
		comp := resps[i].GetComponent()
		if comp.GetName() != fmt.Sprintf("fwd-%02d", i) || comp.GetId() == "" || ids[comp.GetId()] {
			t.Fatalf("create fwd-%02d answered %v", i, comp)
		}
		ids[comp.Id] = true
		entries[comp.CreateIndex] = true
		last = max(last, comp.CreateIndex)
	}
	if len(entries) == writers {
		t.Fatalf("%d concurrent forwarded creates took %d entries: none shared one", writers, len(entries))
	}
	t.Logf("%d forwarded creates in %d entries", writers, len(entries))
	for _, n := range c.Nodes {
		if _, err := n.fsm.Store.WaitForIndex(ctx, last); err != nil {
			t.Fatalf("%s did not reach index %d: %v", n.ID(), last, err)
		}
		for i := range writers {
			got, err := n.fsm.Store.Component(fmt.Sprintf("fwd-%02d", i))
			if err != nil || got.Id != resps[i].Component.Id {
				t.Fatalf("%s holds fwd-%02d as %v (%v), the write answered id %s", n.ID(), i, got, err, resps[i].Component.Id)
			}
		}
	}
}
