package node

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestWatchOnACutOffNodeSaysSo: the console's component list is a Watch on the node that
// serves the page. When that node is cut off from the rest of the cluster, the page must not
// go on presenting its frozen copy as live: within the keepalive period the stream must end
// (Unavailable: the console then shows "reconnecting" and retries, perhaps elsewhere) or
// carry the new state. Before, the cut-off node kept sending keepalives of its stale index
// forever, and a component created meanwhile never showed.
func TestWatchOnACutOffNodeSaysSo(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.Leader(t)
	f, fi := follower(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stream, err := componentv1connect.NewComponentServiceClient(TestHTTPClient, "http://"+f.APIAddr()).Watch(ctx, connect.NewRequest(&componentv1.WatchRequest{}))
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer stream.Close()
	if !stream.Receive() {
		t.Fatalf("first page: %v", stream.Err())
	}
	c.Partition(fi)
	defer c.Heal(fi)
	if _, err := componentv1connect.NewComponentServiceClient(TestHTTPClient, "http://"+leader.APIAddr()).Create(ctx, connect.NewRequest(&componentv1.CreateRequest{
		Name: "unseen", Runtime: statev1.Runtime_RUNTIME_WASM, Spec: &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 1},
	})); err != nil && connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("create on the leader: %v", err)
	}
	type got struct {
		msg *componentv1.WatchResponse
		err error
	}
	ch := make(chan got, 16)
	go func() {
		for stream.Receive() {
			ch <- got{msg: stream.Msg()}
		}
		ch <- got{err: stream.Err()}
	}()
	deadline := time.After(45 * time.Second)
	for {
		select {
		case g := <-ch:
			if g.msg == nil {
				if connect.CodeOf(g.err) != connect.CodeUnavailable {
					t.Fatalf("the Watch on the cut-off node ended with %v, want Unavailable (the console then says reconnecting)", g.err)
				}
				return // the stream ended: the console says so and reconnects
			}
			for _, r := range g.msg.Rows {
				if r.GetComponent().GetName() == "unseen" {
					return // it is live after all
				}
			}
		case <-deadline:
			t.Fatal("45 s after its node was cut off from the cluster, the Watch stream still presents the node's frozen copy as live (keepalives, no error), without the component created meanwhile")
		}
	}
}
