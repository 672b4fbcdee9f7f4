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
// node. On a slow machine the forwarded calls may reach the leader one by one: the burst is
// then tried again, up to three times.
func TestApplyForwardedWritesShareEntries(t *testing.T) {
	c := NewTestCluster(t, 3)
	f := c.Follower(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const writers = 48
	ids := map[string]string{} // name -> id answered
	var last uint64
	shared := false
	for round := 0; round < 3 && !shared; round++ {
		resps := make([]*componentv1.CreateResponse, writers)
		errs := make([]error, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resps[i], errs[i] = createComponent(ctx, f, fmt.Sprintf("fwd-%d-%02d", round, i))
			}()
		}
		close(start)
		wg.Wait()
		entries := map[uint64]bool{}
		for i := range writers {
			name := fmt.Sprintf("fwd-%d-%02d", round, i)
			if errs[i] != nil {
				t.Fatalf("create %s through follower %s: %v", name, f.ID(), errs[i])
			}
			comp := resps[i].GetComponent()
			if comp.GetName() != name || comp.GetId() == "" {
				t.Fatalf("create %s answered %v", name, comp)
			}
			ids[name] = comp.Id
			entries[comp.CreateIndex] = true
			last = max(last, comp.CreateIndex)
		}
		shared = len(entries) < writers
		t.Logf("round %d: %d forwarded creates in %d entries", round, writers, len(entries))
	}
	if !shared {
		t.Fatalf("three bursts of %d concurrent forwarded creates: no two shared an entry", writers)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("two creates answered id %s", id)
		}
		seen[id] = true
	}
	for _, n := range c.Nodes {
		if _, err := n.fsm.Store.WaitForIndex(ctx, last); err != nil {
			t.Fatalf("%s did not reach index %d: %v", n.ID(), last, err)
		}
		for name, id := range ids {
			got, err := n.fsm.Store.Component(name)
			if err != nil || got.Id != id {
				t.Fatalf("%s holds %s as %v (%v), the write answered id %s", n.ID(), name, got, err, id)
			}
		}
	}
}
