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
	for _, n := range s.Nodes {
		if n.Id == first {
			n.Status = statev1.NodeStatus_NODE_STATUS_DOWN
		}
	}
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
