package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/rpc/client"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
)

// Made-up tokens cost the leader almost nothing: each unknown token makes its node catch up
// with the leader (a read barrier, one Raft entry) before it is refused, in case it was made
// a moment ago elsewhere; the catch-ups of a flood are shared (auth.CatchUp), at most one
// per auth.CatchUpGap, instead of one entry per request.
func TestMadeUpTokensShareTheirCatchUps(t *testing.T) {
	c := NewTestCluster(t, 3)
	f, l := c.Follower(t), c.Leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := l.raft.r.LastIndex()
	t0 := time.Now()
	var wg sync.WaitGroup
	const callers, each = 8, 25
	errs := make(chan error, callers*each)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				cl := client.New(f.APIAddr(), client.WithToken("v9t_"+auth.NewSecret()))
				_, err := cl.Components.List(ctx, connect.NewRequest(&componentv1.ListRequest{}))
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	elapsed := time.Since(t0)
	for err := range errs {
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("a made-up token got %v, want Unauthenticated", err)
		}
	}
	grew := l.raft.r.LastIndex() - before
	if most := uint64(elapsed/auth.CatchUpGap) + 5; grew > most {
		t.Fatalf("%d requests with made-up tokens in %s made the leader's log grow by %d entries, want at most %d",
			callers*each, elapsed.Round(time.Millisecond), grew, most)
	}
	t.Logf("%d made-up tokens in %s: the leader's log grew by %d", callers*each, elapsed.Round(time.Millisecond), grew)
}
