// Uses the Go-built hello.wasm: see dataplane_test.go for why it runs without -race.

//go:build !race

package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// countingHandler counts the scheduler's failed commits ("commit placements", "delete
// placements") logged through it, and passes every record on.
type countingHandler struct {
	slog.Handler
	n *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasSuffix(r.Message, " placements") && r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.n}
}

func (h countingHandler) WithGroup(g string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(g), h.n}
}

// Removing a live follower through the ClusterService API (what `v9 cluster remove-peer`
// does) replaces its instances on the remaining nodes, the component keeps answering through
// their proxies, and no leader loops on a plan naming the removed node.
func TestRemoveLivePeerReplacesItsPlacements(t *testing.T) {
	errs := map[string]*atomic.Int64{}
	c := NewTestClusterConfig(t, 3, func(cfg *Config) {
		n := &atomic.Int64{}
		errs[cfg.ID] = n
		cfg.Logger = slog.New(countingHandler{cfg.Logger.Handler(), n})
	})
	mustUpload(t, c.Leader(t), tinyHelloDir(t, "[scale]\nmin = 3\nmax = 3\n"))
	running := func(n *Node) map[string]int {
		out := map[string]int{}
		for _, p := range n.Store().Placements("") {
			if p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN && p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
				out[p.NodeId]++
			}
		}
		return out
	}
	Eventually(t, 60*time.Second, func() error {
		if got := running(c.Nodes[0]); len(got) != 3 {
			return fmt.Errorf("running on %v, want every node", got)
		}
		return nil
	})
	waitServing(t, c.Nodes, "hello from wasm")

	victim := c.Follower(t)
	var rest []*Node
	for _, n := range c.Nodes {
		if n != victim {
			rest = append(rest, n)
		}
	}
	cli := clusterv1connect.NewClusterServiceClient(TestHTTPClient, "http://"+rest[0].APIAddr())
	start := time.Now()
	if _, err := cli.RemovePeer(context.Background(), connect.NewRequest(&clusterv1.RemovePeerRequest{NodeId: victim.ID()})); err != nil {
		t.Fatalf("remove live %s: %v", victim.ID(), err)
	}

	// Its three replicas run on the two remaining nodes, and nothing names it any more.
	Eventually(t, 30*time.Second, func() error {
		for _, n := range rest {
			for _, p := range n.Store().Placements("") {
				if p.NodeId == victim.ID() {
					return fmt.Errorf("%s still holds a placement on %s: %v", n.ID(), victim.ID(), p)
				}
			}
			if got := running(n); got[rest[0].ID()]+got[rest[1].ID()] != 3 || len(got) != 2 {
				return fmt.Errorf("%s sees running %v", n.ID(), got)
			}
		}
		return nil
	})
	t.Logf("remove-peer of live %s → its replicas running on the other nodes: %v", victim.ID(), time.Since(start).Round(time.Millisecond))
	waitServing(t, rest, "hello from wasm")
	for i := 0; i < 20; i++ {
		for _, n := range rest {
			if code, body, _, err := proxyGet(n, "", "/hello/x"); err != nil || code != 200 {
				t.Fatalf("%s proxy after removal: %d %q %v", n.ID(), code, body, err)
			}
		}
	}
	// The leader never looped on the removed node (before the fix: ~40 failures a second).
	for _, n := range rest {
		if k := errs[n.ID()].Load(); k > 2 {
			t.Fatalf("%s logged %d failed placement commits", n.ID(), k)
		}
	}
}
