//go:build !race

package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// BenchmarkReplacement (P7) kills the node running a wasm component's only replica on a
// three-node cluster with the default liveness timing (TTL 3s) and measures the time until
// a replacement runs on another node; median of 5 runs. Run with -benchtime=1x.
func BenchmarkReplacement(b *testing.B) {
	var runs []float64
	for range 5 {
		c := NewTestClusterWith(b, 3, RaftConfig{})
		quiet(c)
		if _, err := upload(context.Background(), c.Leader(b), helloDirB(b)); err != nil {
			b.Fatal(err)
		}
		var old *statev1.Placement
		deadline := time.Now().Add(60 * time.Second)
		for old == nil {
			old, _ = runningPlacementB(c)
			if time.Now().After(deadline) {
				b.Fatal("never running")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Let every node replicate the artifact, as it would long before a failure.
		for _, n := range c.Nodes {
			for !n.artifacts.Has(mustDeployment(b, n, old.DeploymentId).ArtifactDigest) {
				time.Sleep(10 * time.Millisecond)
			}
		}
		o := indexOf(old.NodeId)
		killed := time.Now()
		c.Kill(o)
		for {
			p, err := runningPlacementB(c)
			if err == nil && p.NodeId != old.NodeId {
				break
			}
			if time.Since(killed) > 60*time.Second {
				b.Fatal("no replacement within 60s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		runs = append(runs, time.Since(killed).Seconds())
		c.stopAll()
	}
	b.ReportMetric(median(runs), "replace-s")
	b.ReportMetric(median(runs)-DefaultTTL.Seconds(), "after-ttl-s")
}

func runningPlacementB(c *TestCluster) (*statev1.Placement, error) { return runningPlacement(c) }

func mustDeployment(b *testing.B, n *Node, id string) *statev1.Deployment {
	d, err := n.Store().Deployment(id)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkScheduleBurst (P8) makes 1,000 wasm components with active deployments wait
// while all three nodes are draining, then makes the nodes ready and times one scheduling
// pass of the leader: computing the plan for the 1,000 components and committing it through
// Raft (fsync on, three nodes). Reported: placements committed per second, the pass in ms and
// the Raft entries it took. Run with -benchtime=1x.
func BenchmarkScheduleBurst(b *testing.B) {
	const comps = 1000
	c := NewTestClusterWith(b, 3, RaftConfig{})
	quiet(c)
	l := c.Leader(b)
	ctx := context.Background()
	// One real artifact, shared by every component.
	up, err := upload(ctx, l, helloDirB(b))
	if err != nil {
		b.Fatal(err)
	}
	digest := up.Deployment.ArtifactDigest
	for _, n := range c.Nodes {
		if _, err := l.Drain(ctx, n.ID(), false); err != nil {
			b.Fatal(err)
		}
	}
	apply := func(cmd *statev1.Command) {
		if _, err := l.Apply(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				cid, did := fmt.Sprintf("c%04d", i), fmt.Sprintf("d%04d", i)
				apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
					Id: cid, Name: fmt.Sprintf("burst-%d", i), Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
					Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Source: &statev1.Source{},
					Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 1, Wasm: &statev1.WasmSpec{Module: "hello.wasm"}},
				}}}})
				apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
					Id: did, ComponentId: cid, ArtifactDigest: digest, ArtifactOrigin: l.ID(), Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY,
				}}}})
				apply(&statev1.Command{Op: &statev1.Command_ActivateDeployment{ActivateDeployment: &statev1.ActivateDeployment{ComponentId: cid, DeploymentId: did}}})
			}
		}()
	}
	for i := range comps {
		work <- i
	}
	close(work)
	wg.Wait()

	// Make the nodes ready with the scheduling loop held, then time one scheduling pass:
	// the plan for 1,000 components and its commit.
	l.scheduler.Hold(true)
	for _, n := range c.Nodes {
		if _, err := l.Drain(ctx, n.ID(), true); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	before := l.Store().Index()
	l.scheduler.Pass(ctx)
	d := time.Since(start)
	entries := l.Store().Index() - before
	l.scheduler.Hold(false)
	k := 0
	perNode := map[string]int{}
	for _, p := range l.Store().Placements("") {
		if p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN && len(p.ComponentId) == 5 {
			k++
			perNode[p.NodeId]++
		}
	}
	if k != comps {
		b.Fatalf("one pass placed %d of %d", k, comps)
	}
	b.ReportMetric(float64(comps)/d.Seconds(), "placements/s")
	b.ReportMetric(float64(d.Microseconds())/1000, "pass-ms")
	b.ReportMetric(float64(entries), "raft-entries")
	b.Logf("placements per node: %v", perNode)
}
