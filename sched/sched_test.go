package sched

import (
	"testing"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

var wasm = statev1.Runtime_RUNTIME_WASM

func node(id string, rts ...statev1.Runtime) *statev1.Node {
	return &statev1.Node{Id: id, Status: statev1.NodeStatus_NODE_STATUS_READY, Runtimes: rts}
}

func world(replicas uint32, nodes ...*statev1.Node) *statev1.State {
	return &statev1.State{
		Nodes: nodes,
		Components: []*statev1.Component{{
			Id: "c1", Name: "hello", Runtime: wasm, Replicas: replicas, ActiveDeploymentId: "d1",
			Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
			Spec:    &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 10},
		}},
		Deployments: []*statev1.Deployment{{Id: "d1", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY}},
	}
}

// commit applies a plan to the state as the fsm would.
func commit(s *statev1.State, p Plan) {
	byID := map[string]int{}
	for i, q := range s.Placements {
		byID[q.Id] = i
	}
	for _, q := range p.Put {
		if i, ok := byID[q.Id]; ok {
			s.Placements[i] = q
		} else {
			s.Placements = append(s.Placements, q)
			byID[q.Id] = len(s.Placements) - 1
		}
	}
	del := map[string]bool{}
	for _, id := range p.Delete {
		del[id] = true
	}
	var keep []*statev1.Placement
	for _, q := range s.Placements {
		if !del[q.Id] {
			keep = append(keep, q)
		}
	}
	s.Placements = keep
}

func observe(s *statev1.State, o statev1.PlacementObserved) {
	for _, p := range s.Placements {
		if p.Desired == run {
			p.Observed = o
		} else {
			p.Observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED
		}
	}
}

// setStatus sets the status of node id.
func setStatus(s *statev1.State, id string, st statev1.NodeStatus) {
	for _, n := range s.Nodes {
		if n.Id == id {
			n.Status = st
		}
	}
}

func wanted(s *statev1.State, dep string) map[string]int {
	out := map[string]int{}
	for _, p := range s.Placements {
		if p.Desired == run && p.DeploymentId == dep {
			out[p.NodeId]++
		}
	}
	return out
}

func TestSpreadsOnePerNodeFirst(t *testing.T) {
	s := world(3, node("a", wasm), node("b", wasm), node("c", wasm))
	commit(s, Schedule(s))
	if got := wanted(s, "d1"); len(got) != 3 || got["a"] != 1 || got["b"] != 1 || got["c"] != 1 {
		t.Fatalf("placements per node: %v", got)
	}
	if p := Schedule(s); !p.Empty() {
		t.Fatalf("second run not idempotent: %+v", p)
	}
	s.Components[0].Replicas = 5
	commit(s, Schedule(s))
	if got := wanted(s, "d1"); got["a"]+got["b"]+got["c"] != 5 || got["a"] > 2 || got["b"] > 2 || got["c"] > 2 {
		t.Fatalf("5 replicas on 3 nodes: %v", got)
	}
	s.Components[0].Replicas = 1
	commit(s, Schedule(s))
	if got := wanted(s, "d1"); got["a"]+got["b"]+got["c"] != 1 {
		t.Fatalf("scale down to 1: %v", got)
	}
}

func TestNeverPicksNodeWithoutRuntime(t *testing.T) {
	s := world(3, node("a", wasm), node("b"), node("c", statev1.Runtime_RUNTIME_CONTAINER))
	commit(s, Schedule(s))
	if got := wanted(s, "d1"); got["b"] != 0 || got["c"] != 0 || got["a"] != 3 {
		t.Fatalf("placements: %v", got)
	}
}

func TestRolloutStartsNewBeforeStoppingOld(t *testing.T) {
	s := world(2, node("a", wasm), node("b", wasm))
	commit(s, Schedule(s))
	observe(s, statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING)

	s.Deployments = append(s.Deployments, &statev1.Deployment{Id: "d2", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY})
	s.Components[0].ActiveDeploymentId = "d2"
	commit(s, Schedule(s))
	if got := wanted(s, "d1"); got["a"]+got["b"] != 2 {
		t.Fatalf("old placements stopped before the new ones run: %v", got)
	}
	if got := wanted(s, "d2"); got["a"]+got["b"] != 2 {
		t.Fatalf("new placements: %v", got)
	}
	// New ones still starting: nothing changes.
	if p := Schedule(s); !p.Empty() {
		t.Fatalf("plan while new ones start: %+v", p)
	}
	observe(s, statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING)
	commit(s, Schedule(s))
	if got := wanted(s, "d1"); len(got) != 0 {
		t.Fatalf("old placements still wanted after new ones run: %v", got)
	}
	observe(s, statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING)
	commit(s, Schedule(s)) // stopped ones are deleted
	for _, p := range s.Placements {
		if p.DeploymentId == "d1" {
			t.Fatalf("old placement %s not deleted", p.Id)
		}
	}
}

func TestPauseStopsAndDownNodeIsReplaced(t *testing.T) {
	s := world(1, node("a", wasm), node("b", wasm))
	commit(s, Schedule(s))
	first := s.Placements[0].NodeId
	setStatus(s, first, statev1.NodeStatus_NODE_STATUS_DOWN)
	commit(s, Schedule(s))
	got := wanted(s, "d1")
	if got[first] != 0 || len(got) != 1 {
		t.Fatalf("not replaced off the down node %s: %v", first, got)
	}
	s.Components[0].Desired = statev1.DesiredState_DESIRED_STATE_PAUSED
	commit(s, Schedule(s))
	if got := wanted(s, "d1"); len(got) != 0 {
		t.Fatalf("paused component still wanted: %v", got)
	}
}

func TestDeterministic(t *testing.T) {
	a := world(3, node("a", wasm), node("b", wasm), node("c", wasm))
	b := world(3, node("a", wasm), node("b", wasm), node("c", wasm))
	pa, pb := Schedule(a), Schedule(b)
	if len(pa.Put) != len(pb.Put) {
		t.Fatal("different plans")
	}
	for i := range pa.Put {
		if pa.Put[i].Id != pb.Put[i].Id || pa.Put[i].NodeId != pb.Put[i].NodeId {
			t.Fatalf("plans differ at %d: %v vs %v", i, pa.Put[i], pb.Put[i])
		}
	}
}

func exclusiveWorld(nodes ...*statev1.Node) *statev1.State {
	s := world(1, nodes...)
	s.Components[0].Spec.Exclusive = true
	s.Components[0].Spec.ScaleMax = 1
	return s
}

func runningOn(s *statev1.State) []string {
	var out []string
	for _, p := range s.Placements {
		if p.Desired == run || !settled(p) {
			out = append(out, p.NodeId+"/"+p.DeploymentId)
		}
	}
	return out
}

func TestExclusiveRolloutStopsOldBeforeStartingNew(t *testing.T) {
	s := exclusiveWorld(node("a", wasm), node("b", wasm))
	commit(s, Schedule(s))
	observe(s, running)
	s.Deployments = append(s.Deployments, &statev1.Deployment{Id: "d2", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY})
	s.Components[0].ActiveDeploymentId = "d2"
	commit(s, Schedule(s))
	// The old one is told to stop and nothing new is placed while it may still run.
	if got := wanted(s, "d2"); len(got) != 0 {
		t.Fatalf("placed d2 while d1 may still run: %v", got)
	}
	if got := wanted(s, "d1"); len(got) != 0 {
		t.Fatalf("d1 still wanted: %v", got)
	}
	// Once the node reports it stopped, the new one is placed.
	for _, p := range s.Placements {
		p.Observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED
	}
	commit(s, Schedule(s))
	commit(s, Schedule(s))
	if got := wanted(s, "d2"); len(got) != 1 {
		t.Fatalf("d2 placements: %v (state %v)", got, runningOn(s))
	}
}

func TestExclusiveWaitsForLostBeforeReplacing(t *testing.T) {
	s := exclusiveWorld(node("a", wasm), node("b", wasm))
	commit(s, Schedule(s))
	observe(s, running)
	var on string
	for _, p := range s.Placements {
		on = p.NodeId
	}
	// A draining node: the exclusive placement stops first, no second one meanwhile.
	setStatus(s, on, statev1.NodeStatus_NODE_STATUS_DRAINING)
	commit(s, Schedule(s))
	if got := runningOn(s); len(got) != 1 {
		t.Fatalf("while the old one may run: %v", got)
	}
	// Down: the leader marks it lost; only then is a replacement placed elsewhere.
	setStatus(s, on, statev1.NodeStatus_NODE_STATUS_DOWN)
	for _, p := range s.Placements {
		p.Observed = lost
	}
	commit(s, Schedule(s))
	got := wanted(s, "d1")
	if len(got) != 1 || got[on] != 0 {
		t.Fatalf("replacement: %v (old node %s)", got, on)
	}
}

func TestDrainKeepsOldUntilReplacementRuns(t *testing.T) {
	s := world(1, node("a", wasm), node("b", wasm))
	commit(s, Schedule(s))
	observe(s, running)
	var on string
	for _, p := range s.Placements {
		on = p.NodeId
	}
	setStatus(s, on, statev1.NodeStatus_NODE_STATUS_DRAINING)
	commit(s, Schedule(s))
	if got := wanted(s, "d1"); len(got) != 2 || got[on] != 1 {
		t.Fatalf("during the drain want old and new: %v", got)
	}
	observe(s, running)
	commit(s, Schedule(s))
	if got := wanted(s, "d1"); len(got) != 1 || got[on] != 0 {
		t.Fatalf("after the replacement runs: %v", got)
	}
}

func TestPrefersNodeWithArtifact(t *testing.T) {
	s := world(1, node("a", wasm), node("b", wasm), node("c", wasm))
	s.Deployments[0].ArtifactDigest = "sha256:x"
	p := ScheduleWith(s, Hints{Artifacts: map[string]map[string]bool{"c": {"sha256:x": true}}})
	if len(p.Put) != 1 || p.Put[0].NodeId != "c" {
		t.Fatalf("put %v, want on c", p.Put)
	}
	s.Deployments[0].ArtifactOrigin = "b"
	p = Schedule(s)
	if len(p.Put) != 1 || p.Put[0].NodeId != "b" {
		t.Fatalf("put %v, want on the origin b", p.Put)
	}
}

func TestExclusiveRunPlacementReportedStoppedIsNotGone(t *testing.T) {
	// A fenced exclusive instance may report STOPPED while still desired RUN: it may start
	// again, so a rollout must not place the new version until its node stopped it for good.
	s := exclusiveWorld(node("a", wasm), node("b", wasm))
	commit(s, Schedule(s))
	for _, p := range s.Placements {
		p.Observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED // desired still RUN
	}
	s.Deployments = append(s.Deployments, &statev1.Deployment{Id: "d2", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY})
	s.Components[0].ActiveDeploymentId = "d2"
	p := Schedule(s)
	for _, q := range p.Put {
		if q.DeploymentId == "d2" {
			t.Fatalf("placed d2 (%v) while d1's RUN placement only reported STOPPED", q)
		}
	}
	commit(s, p)
	// Once desired STOP is committed and the node confirms, d2 is placed.
	for _, q := range s.Placements {
		q.Observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED
	}
	commit(s, Schedule(s))
	commit(s, Schedule(s))
	if got := wanted(s, "d2"); len(got) != 1 {
		t.Fatalf("d2 placements: %v", got)
	}
}

// A node removed from the state (cluster remove-peer) may leave placements that name it,
// still desired RUN (removed before fsm stopped them) or not: the plan never puts a placement
// on it — fsm would refuse it and the leader would retry forever — but deletes them and
// places replacements on the remaining nodes.
func TestRemovedNodeIsNeverWrittenAndIsReplaced(t *testing.T) {
	for _, lostByFSM := range []bool{false, true} {
		s := world(3, node("a", wasm), node("b", wasm), node("c", wasm))
		commit(s, Schedule(s))
		observe(s, running)
		s.Nodes = s.Nodes[:2] // "c" removed
		for _, p := range s.Placements {
			if p.NodeId == "c" && lostByFSM {
				p.Desired, p.Observed, p.Epoch = stop, lost, p.Epoch+1
			}
		}
		plan := Schedule(s)
		for _, p := range plan.Put {
			if p.NodeId == "c" {
				t.Fatalf("lost=%v: plan writes a placement on the removed node: %v", lostByFSM, p)
			}
		}
		commit(s, plan)
		for _, p := range s.Placements {
			if p.NodeId == "c" {
				t.Fatalf("lost=%v: placement on the removed node kept: %v", lostByFSM, p)
			}
		}
		if got := wanted(s, "d1"); got["a"]+got["b"] != 3 || got["c"] != 0 {
			t.Fatalf("lost=%v: not replaced on a and b: %v", lostByFSM, got)
		}
		if p := Schedule(s); !p.Empty() {
			t.Fatalf("lost=%v: not idempotent: %+v", lostByFSM, p)
		}
	}
}

// A scale-down (by hand or by the autoscaler) stops the instances that do not serve
// (failed, starting) first, then by node load and id: from three instances, one
// crash-looping (FAILED) and two running, a scale to one keeps a running one (as Nomad and
// Kubernetes stop unhealthy instances first).
func TestScaleDownStopsNotRunningFirst(t *testing.T) {
	s := world(1, node("a", wasm), node("b", wasm), node("c", wasm))
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	s.Placements = []*statev1.Placement{
		{Id: "d1-a-0", ComponentId: "c1", DeploymentId: "d1", NodeId: "a", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, Reason: "instance stopped"},
		{Id: "d1-b-0", ComponentId: "c1", DeploymentId: "d1", NodeId: "b", Desired: run, Observed: running},
		{Id: "d1-c-0", ComponentId: "c1", DeploymentId: "d1", NodeId: "c", Desired: run, Observed: running},
	}
	plan := Schedule(s)
	commit(s, plan)
	var kept []string
	for _, p := range s.Placements {
		if p.Desired == run {
			kept = append(kept, p.Id)
		}
	}
	if len(kept) != 1 || kept[0] == "d1-a-0" {
		t.Fatalf("scaled from 3 to 1 keeps %v, want one running instance: plan %v", kept, plan.Put)
	}
}

// A placement whose starts keep failing on its node (an artifact fetch that fails there, a
// full disk, a broken runtime) is stopped there after RescheduleAfter failures in a row and
// placed on another node, which inherits the count (its node backs off before starting);
// with fewer failures, or with no other node to go to, it stays and its node retries. An
// exclusive one moves once the failing instance has stopped.
func TestFailingPlacementIsReplacedElsewhere(t *testing.T) {
	failingOnA := func(failures uint32, nodes ...*statev1.Node) *statev1.State {
		s := world(1, nodes...)
		s.Deployments[0].Served = true
		s.Placements = []*statev1.Placement{{Id: "d1-a-0", ComponentId: "c1", DeploymentId: "d1", NodeId: "a",
			Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED,
			Reason: "artifact sha256:…: no space left on device", Failures: failures, Epoch: 1}}
		return s
	}
	s := failingOnA(RescheduleAfter, node("a", wasm), node("b", wasm))
	plan := Schedule(s)
	commit(s, plan)
	if w := wanted(s, "d1"); w["a"] != 0 || w["b"] != 1 {
		t.Fatalf("the only instance fails on node a %d times: wanted %v, plan %+v", RescheduleAfter, w, plan)
	}
	for _, p := range s.Placements {
		if p.NodeId == "b" && p.Failures != RescheduleAfter {
			t.Fatalf("the replacement does not inherit the failures: %v", p)
		}
	}
	// The replacement fails too: it moves back to a (the failing one there is gone).
	observe(s, statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED)
	commit(s, Schedule(s)) // a's stopped placement is deleted
	for _, p := range s.Placements {
		p.Failures++
	}
	commit(s, Schedule(s))
	if w := wanted(s, "d1"); w["a"] != 1 || w["b"] != 0 {
		t.Fatalf("failing on b after a: wanted %v", w)
	}

	for _, s := range []*statev1.State{
		failingOnA(RescheduleAfter-1, node("a", wasm), node("b", wasm)), // not yet
		failingOnA(RescheduleAfter, node("a", wasm)),                    // nowhere else
		failingOnA(RescheduleAfter, node("a", wasm), node("b")),         // b cannot run wasm
	} {
		if plan := Schedule(s); !plan.Empty() {
			t.Fatalf("nodes %v, %d failures: %+v", s.Nodes, s.Placements[0].Failures, plan)
		}
	}

	s = failingOnA(RescheduleAfter, node("a", wasm), node("b", wasm))
	s.Components[0].Spec.Exclusive = true
	commit(s, Schedule(s))
	if w := wanted(s, "d1"); len(w) != 0 {
		t.Fatalf("exclusive: a replacement runs before the failing one stopped: %v", w)
	}
	observe(s, statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED)
	commit(s, Schedule(s))
	if w := wanted(s, "d1"); w["b"] != 1 || len(s.Placements) != 1 || s.Placements[0].Failures != RescheduleAfter {
		t.Fatalf("exclusive: after the failing one stopped: wanted %v, placements %v", w, s.Placements)
	}
}
