package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	statsv1 "github.com/velocity9/v9/rpc/gen/v9/stats/v1"
	"github.com/velocity9/v9/rpc/gen/v9/stats/v1/statsv1connect"
)

// TestStatsHistorySurvivesRestart: requests a node's proxy answered are still in the
// merged 1 h and 24 h series after that node restarts (its rollups are on disk), and the
// series of every node add up.
func TestStatsHistorySurvivesRestart(t *testing.T) {
	c := NewTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A component without a deployment: every proxy answers 503 and counts it.
	if _, err := componentClient(c.Nodes[0]).Create(ctx, connect.NewRequest(&componentv1.CreateRequest{Name: "quiet", Runtime: statev1.Runtime_RUNTIME_WASM})); err != nil {
		t.Fatal(err)
	}
	// One 503 "no running instance" from each of two nodes. Until a node's replica knows the
	// component it answers 404, or 503 "starting", which are counted under proxy.Unrouted:
	// a name the node does not know gets no series of its own.
	for _, i := range []int{1, 2} {
		Eventually(t, 20*time.Second, func() error {
			if code, body, _, err := proxyGet(c.Nodes[i], "", "/quiet/"); err != nil || code != 503 || !strings.Contains(body, "no running instance") {
				return fmt.Errorf("node %d proxy: %d %q %v", i, code, body, err)
			}
			return nil
		})
	}
	series := func(n *Node, minutes uint32) (uint64, uint32, error) {
		r, err := statsv1connect.NewStatsServiceClient(TestHTTPClient, "http://"+n.APIAddr()).
			Series(ctx, connect.NewRequest(&statsv1.SeriesRequest{Component: "quiet", Minutes: minutes}))
		if err != nil {
			return 0, 0, err
		}
		var n5 uint64
		for _, b := range r.Msg.Buckets {
			n5 += b.Status_5Xx
		}
		return n5, r.Msg.BucketSeconds, nil
	}
	want := func(minutes, secs uint32) {
		t.Helper()
		Eventually(t, 20*time.Second, func() error {
			got, bs, err := series(c.Nodes[0], minutes)
			if err != nil || got != 2 || bs != secs {
				return fmt.Errorf("%d min series: %d 503s in %d s buckets (%v), want 2 in %d s", minutes, got, bs, err, secs)
			}
			return nil
		})
	}
	want(60, 10)
	want(24*60, 60)
	c.Stop(2)
	c.Restart(2)
	want(60, 10)
	want(24*60, 60)
}
