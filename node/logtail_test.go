package node

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	logsv1 "github.com/velocity9/v9/rpc/gen/v9/logs/v1"
	"github.com/velocity9/v9/rpc/gen/v9/logs/v1/logsv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestLogTailOfADeletedComponentEnds: `v9 logs -f NAME` (and the console's Logs card) on a
// component that someone deletes must end and say so (NotFound), as the Watch of its
// deployment does. Before, the follow stream stayed open forever, silent, on a name that was
// gone: the user waited on logs that could never come.
func TestLogTailOfADeletedComponentEnds(t *testing.T) {
	c := NewTestCluster(t, 1)
	api := "http://" + c.Nodes[0].APIAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	comps, stream := createAndFollow(ctx, t, api, "doomed")
	defer stream.Close()
	if !stream.Receive() {
		t.Fatalf("first batch: %v", stream.Err())
	}
	if _, err := comps.Delete(ctx, connect.NewRequest(&componentv1.DeleteRequest{Name: "doomed"})); err != nil {
		t.Fatalf("delete: %v", err)
	}
	ended := make(chan error, 1)
	go func() {
		for stream.Receive() {
		}
		ended <- stream.Err()
	}()
	select {
	case err := <-ended:
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("the tail of a deleted component ended with %v, want NotFound", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("20 s after its component was deleted, the follow tail is still open and silent")
	}
}

// TestLogTailFollowsANodeThatRestarts: `v9 logs -f` (and the console's Logs tab) follows a
// component's lines on every node. When one node restarts mid-tail, its lines must show
// again once it is back (or the stream must end with an error the client retries on).
// Before, that node's part of the fan-out ended silently and never resumed: the tail went on,
// healthy-looking, without that node's lines.
func TestLogTailFollowsANodeThatRestarts(t *testing.T) {
	c := NewTestCluster(t, 3)
	api := "http://" + c.Nodes[0].APIAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, stream := createAndFollow(ctx, t, api, "tailed")
	defer stream.Close()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		for stream.Receive() {
			for _, l := range stream.Msg().Lines {
				lines <- l.Text
			}
		}
	}()
	// waitLine appends text on node i every half second until the tail shows it.
	waitLine := func(i int, text string, within time.Duration) bool {
		end := time.After(within)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		c.Nodes[i].logs.Append("tailed", "i1", "stdout", text)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the tail ended (%v) before %q showed", stream.Err(), text)
				}
				if l == text {
					return true
				}
			case <-tick.C:
				c.Nodes[i].logs.Append("tailed", "i1", "stdout", text)
			case <-end:
				return false
			}
		}
	}
	if !waitLine(2, "before restart", 20*time.Second) {
		t.Fatal("the tail never showed a line of n3 (before any restart)")
	}
	c.Stop(2)
	c.Restart(2)
	if !waitLine(2, "after restart", 20*time.Second) {
		t.Fatal("after n3 restarted, the follow tail never showed its lines again, and did not end with an error either")
	}
}

// createAndFollow creates a wasm component at zero through api and opens a follow tail of it.
func createAndFollow(ctx context.Context, t *testing.T, api, name string) (componentv1connect.ComponentServiceClient, *connect.ServerStreamForClient[logsv1.TailResponse]) {
	t.Helper()
	comps := componentv1connect.NewComponentServiceClient(TestHTTPClient, api)
	if _, err := comps.Create(ctx, connect.NewRequest(&componentv1.CreateRequest{
		Name: name, Runtime: statev1.Runtime_RUNTIME_WASM, Spec: &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 1},
	})); err != nil {
		t.Fatalf("create: %v", err)
	}
	stream, err := logsv1connect.NewLogServiceClient(TestHTTPClient, api).Tail(ctx, connect.NewRequest(&logsv1.TailRequest{Component: name, Follow: true}))
	if err != nil {
		t.Fatalf("tail: %v", err)
	}
	return comps, stream
}
