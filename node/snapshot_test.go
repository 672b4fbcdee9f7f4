// Restoring serves the wasm component again, which compiles hello.wasm: not under -race
// (see dataplane_test.go).

//go:build !race

package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/rpc/client"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
)

// TestDataPlaneSnapshotSaveWipeRestore saves an operator snapshot through a follower's API,
// loses every node (a brand-new cluster on empty disks), restores the snapshot through the
// API, and checks that the new cluster holds the components, serves the wasm component on
// every node, and took the artifact from the snapshot.
func TestDataPlaneSnapshotSaveWipeRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old := NewTestCluster(t, 3)
	resp := mustUpload(t, old.Follower(t), helloDir(t, "[env]\nGREETING = \"saved\"\n"))
	if _, err := createComponent(ctx, old.Nodes[0], "plain"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, old.Nodes, "hello from wasm saved /x")

	var archive bytes.Buffer
	stream, err := client.New(old.Follower(t).APIAddr(), client.WithToken(TestToken)).Cluster.SnapshotSave(ctx, connect.NewRequest(&clusterv1.SnapshotSaveRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		archive.Write(stream.Msg().Chunk)
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("snapshot save: %v", err)
	}
	stream.Close()
	for i := range old.Nodes {
		old.Stop(i)
	}

	// Every node lost: a new cluster on empty data dirs.
	c := NewTestCluster(t, 3)
	if _, err := componentClient(c.Nodes[0]).Get(ctx, connect.NewRequest(&componentv1.GetRequest{Name: "hello"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("new cluster: get hello = %v, want NotFound", err)
	}
	restore := func(n *Node) (*clusterv1.SnapshotRestoreResponse, error) {
		s := client.New(n.APIAddr(), client.WithToken(TestToken)).Cluster.SnapshotRestore(ctx)
		for b := archive.Bytes(); len(b) > 0; {
			k := min(len(b), 256<<10)
			if err := s.Send(&clusterv1.SnapshotRestoreRequest{Chunk: b[:k]}); err != nil {
				break
			}
			b = b[k:]
		}
		r, err := s.CloseAndReceive()
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	}
	if _, err := restore(c.Follower(t)); connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "leader") {
		t.Fatalf("restore on a follower = %v, want FailedPrecondition naming the leader", err)
	}
	res, err := restore(c.Leader(t))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if res.Components != 2 || res.Artifacts != 1 {
		t.Fatalf("restore = %v, want 2 components and 1 artifact", res)
	}

	waitServing(t, c.Nodes, "hello from wasm saved /x")
	for _, n := range c.Nodes {
		for _, name := range []string{"hello", "plain"} {
			g, err := componentClient(n).Get(ctx, connect.NewRequest(&componentv1.GetRequest{Name: name, Read: &componentv1.ReadOptions{Consistent: true}}))
			if err != nil {
				t.Fatalf("%s: get %s after restore: %v", n.ID(), name, err)
			}
			if name == "hello" && g.Msg.Component.ActiveDeploymentId != resp.Deployment.Id {
				t.Fatalf("%s: hello's active deployment %s, want the saved %s", n.ID(), g.Msg.Component.ActiveDeploymentId, resp.Deployment.Id)
			}
		}
	}
	// Writes go on after the restore, and consistent reads on followers see them.
	if _, err := createComponent(ctx, c.Follower(t), "after"); err != nil {
		t.Fatalf("write after restore: %v", err)
	}
	for _, n := range c.Nodes {
		if _, err := componentClient(n).Get(ctx, connect.NewRequest(&componentv1.GetRequest{Name: "after", Read: &componentv1.ReadOptions{Consistent: true}})); err != nil {
			t.Fatalf("%s: consistent read of a write after the restore: %v", n.ID(), err)
		}
	}
}
