//go:build !race

package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/internal/wasmtest"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// owner returns the index of the node running the active deployment of hello.
func owner(t *testing.T, c *TestCluster) int {
	t.Helper()
	var i int
	Eventually(t, 20*time.Second, func() error {
		p, err := runningPlacement(c)
		if err != nil {
			return err
		}
		i = indexOf(p.NodeId)
		return nil
	})
	return i
}

// TestDataPlaneNodeDownIsReplaced kills the node running a wasm component's only replica:
// the leader marks it down after its TTL, the placement lost, and a replacement runs on
// another node; requests through the surviving proxies keep succeeding throughout. When
// the node comes back it is ready again and runs nothing it no longer owns.
func TestDataPlaneNodeDownIsReplaced(t *testing.T) {
	c := NewTestCluster(t, 3)
	mustUpload(t, c.Leader(t), helloDir(t, ""))
	waitServing(t, c.Nodes, "hello from wasm")
	o := owner(t, c)
	old, err := runningPlacement(c)
	if err != nil {
		t.Fatal(err)
	}
	g := startLoad(others(c, o), 4)
	killed := time.Now()
	c.Kill(o)
	Eventually(t, DefaultTTL+10*time.Second, func() error {
		p, err := runningPlacement(c)
		if err != nil {
			return err
		}
		if p.NodeId == c.Nodes[o].ID() {
			return fmt.Errorf("still only on the killed node")
		}
		return nil
	})
	t.Logf("replacement running %s after the kill", time.Since(killed).Round(time.Millisecond))
	g.end(t, "requests through the surviving proxies")
	s := c.Live()[0].Store()
	if nd, _ := s.Node(c.Nodes[o].ID()); nd.GetStatus() != statev1.NodeStatus_NODE_STATUS_DOWN {
		t.Fatalf("killed node status %v, want down", nd.GetStatus())
	}

	// Back: ready again, and it does not run the placement it lost.
	c.Restart(o)
	Eventually(t, 10*time.Second, func() error {
		nd, _ := c.Nodes[o].Store().Node(c.Nodes[o].ID())
		if nd.GetStatus() != statev1.NodeStatus_NODE_STATUS_READY {
			return fmt.Errorf("restarted node status %v", nd.GetStatus())
		}
		for _, p := range c.Nodes[o].Store().Placements("") {
			if p.Id == old.Id {
				return fmt.Errorf("lost placement %s still in the state (%s/%s)", p.Id, p.Desired, p.Observed)
			}
		}
		return nil
	})
	if k := c.Nodes[o].dp.Running("hello"); k != 0 {
		t.Fatalf("the restarted node runs %d instances of hello", k)
	}
}

// TestDataPlaneExclusiveNeverTwiceAcrossPartition partitions the node running an exclusive
// component from everyone: it stops its instance when its lease runs out, and only after the
// leader's longer TTL is a replacement started elsewhere. A sampler checks that at no
// moment do two nodes run it; after healing exactly one instance runs.
func TestDataPlaneExclusiveNeverTwiceAcrossPartition(t *testing.T) {
	c := NewTestCluster(t, 3)
	mustUpload(t, c.Leader(t), helloDir(t, "[scale]\nmax = 1\nexclusive = true\n"))
	waitServing(t, c.Nodes, "hello from wasm")
	o := owner(t, c)

	var maxSeen atomic.Int64
	var samples atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			k := 0
			for _, n := range c.Nodes {
				if n.dp.Running("hello") > 0 {
					k++
				}
			}
			samples.Add(1)
			if int64(k) > maxSeen.Load() {
				maxSeen.Store(int64(k))
			}
		}
	}()
	c.Partition(o)
	Eventually(t, DefaultTTL+15*time.Second, func() error {
		for i, n := range c.Nodes {
			if i != o && n.dp.Running("hello") > 0 {
				return nil
			}
		}
		return fmt.Errorf("no replacement yet")
	})
	if c.Nodes[o].dp.Running("hello") != 0 {
		t.Fatalf("the partitioned node still runs the exclusive instance")
	}
	c.Heal(o)
	Eventually(t, 15*time.Second, func() error {
		total := 0
		for _, n := range c.Nodes {
			total += n.dp.Running("hello")
		}
		if total != 1 {
			return fmt.Errorf("%d instances after healing", total)
		}
		if nd, _ := c.Nodes[o].Store().Node(c.Nodes[o].ID()); nd.GetStatus() != statev1.NodeStatus_NODE_STATUS_READY {
			return fmt.Errorf("healed node is %v", nd.GetStatus())
		}
		return nil
	})
	waitServing(t, c.Nodes, "hello from wasm")
	close(stop)
	<-done
	if m := maxSeen.Load(); m > 1 {
		t.Fatalf("%d nodes ran the exclusive component at once", m)
	}
	t.Logf("%d samples, never two at once", samples.Load())
}

// TestDataPlaneDrainMovesPlacementsWithoutFailures drains the node running a component
// under load: a replacement starts elsewhere first, then the drained node's instance
// stops; no request fails, and the node takes no placement until undrained.
func TestDataPlaneDrainMovesPlacementsWithoutFailures(t *testing.T) {
	c := NewTestCluster(t, 3)
	mustUpload(t, c.Leader(t), helloDir(t, ""))
	waitServing(t, c.Nodes, "hello from wasm")
	o := owner(t, c)
	g := startLoad(c.Nodes, 6)
	cli := clusterv1connect.NewClusterServiceClient(TestHTTPClient, "http://"+c.Nodes[(o+1)%3].APIAddr())
	if _, err := cli.Drain(context.Background(), connect.NewRequest(&clusterv1.DrainRequest{NodeId: c.Nodes[o].ID()})); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 20*time.Second, func() error {
		for _, p := range c.Nodes[o].Store().Placements(c.Nodes[o].ID()) {
			return fmt.Errorf("placement %s still on the drained node (%s/%s)", p.Id, p.Desired, p.Observed)
		}
		if _, err := runningPlacement(c); err != nil {
			return err
		}
		return nil
	})
	g.end(t, "requests during the drain")
	resp, err := cli.Nodes(context.Background(), connect.NewRequest(&clusterv1.NodesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range resp.Msg.Nodes {
		if info.Node.Id == c.Nodes[o].ID() && (info.Node.Status != statev1.NodeStatus_NODE_STATUS_DRAINING || info.Placements != 0) {
			t.Fatalf("drained node: %v", info)
		}
		if info.LastHeartbeat == nil {
			t.Fatalf("no heartbeat time for %s from the leader", info.Node.Id)
		}
	}
	if _, err := cli.Drain(context.Background(), connect.NewRequest(&clusterv1.DrainRequest{NodeId: "nope"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("drain of an unknown node: %v", err)
	}
}

// TestDataPlaneBrokenRolloutKeepsOldVersion deploys a version whose module traps: its
// instances fail their readiness check on every node and never take traffic, so the
// deployment is failed with the reason and the old version, which never stopped serving,
// is active again.
func TestDataPlaneBrokenRolloutKeepsOldVersion(t *testing.T) {
	c := NewTestClusterOpts(t, 3, TestOptions{Liveness: LivenessConfig{RolloutDeadline: 3 * time.Second}})
	first := mustUpload(t, c.Leader(t), helloDir(t, "[env]\nGREETING = \"v1\"\n"))
	waitServing(t, c.Nodes, "hello from wasm v1")
	g := startLoad(c.Nodes, 3)
	bad := helloDir(t, "[env]\nGREETING = \"v2\"\n")
	// A module that passes the upload check and traps on every request.
	if err := os.WriteFile(filepath.Join(bad, "hello.wasm"), wasmtest.Trap(), 0o644); err != nil {
		t.Fatal(err)
	}
	second := mustUpload(t, c.Follower(t), bad)
	Eventually(t, 30*time.Second, func() error {
		d, err := c.Nodes[0].Store().Deployment(second.Deployment.Id)
		if err != nil {
			return err
		}
		if d.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
			return fmt.Errorf("new deployment is %s", d.Status)
		}
		if !strings.Contains(d.Error, "rollout failed") {
			return fmt.Errorf("error %q", d.Error)
		}
		comp, _ := c.Nodes[0].Store().Component("hello")
		if comp.ActiveDeploymentId != first.Deployment.Id {
			return fmt.Errorf("active is %s, want the first %s", comp.ActiveDeploymentId, first.Deployment.Id)
		}
		return nil
	})
	d, _ := c.Nodes[0].Store().Deployment(second.Deployment.Id)
	t.Logf("failed deployment: %s", d.Error)
	g.end(t, "requests during the broken rollout")
	waitServing(t, c.Nodes, "hello from wasm v1")
}
