package server

import (
	"testing"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestComponentStatuses checks what the console's lists show: running, wanted and failed
// replicas counted from placements desired running, the active deployment without its build
// log, placements only when asked, and nothing wanted while paused.
func TestComponentStatuses(t *testing.T) {
	st := fsm.NewStore()
	var idx uint64
	apply := func(c *statev1.Command) {
		t.Helper()
		idx++
		if err := st.Apply(idx, c); err != nil {
			t.Fatalf("apply %v: %v", c, err)
		}
	}
	spec := &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "m.wasm"}}
	for _, name := range []string{"web", "api"} {
		apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
			Id: "c-" + name, Name: name, Runtime: statev1.Runtime_RUNTIME_WASM, Spec: spec, Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Replicas: 3,
		}}}})
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		apply(&statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
			Id: n, RaftAddr: n + ":1", ApiAddr: n + ":2", Status: statev1.NodeStatus_NODE_STATUS_READY, Runtimes: []statev1.Runtime{statev1.Runtime_RUNTIME_WASM},
		}}}})
	}
	apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
		Id: "d1", ComponentId: "c-web", CommitSha: "abc", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
	}}}})
	apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: "d1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: "sha256:00", BuildLog: "compiled", Activate: true,
	}}})
	var ps []*statev1.Placement
	for i, n := range []string{"n1", "n2", "n3"} {
		ps = append(ps, &statev1.Placement{Id: "p" + n, ComponentId: "c-web", DeploymentId: "d1", NodeId: n, Desired: statev1.PlacementDesired_PLACEMENT_DESIRED_RUN, Epoch: uint64(i + 1)})
	}
	ps = append(ps, &statev1.Placement{Id: "pold", ComponentId: "c-web", DeploymentId: "d1", NodeId: "n1", Desired: statev1.PlacementDesired_PLACEMENT_DESIRED_STOP, Epoch: 9})
	apply(&statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: ps}}})
	observe := func(id string, o statev1.PlacementObserved) {
		apply(&statev1.Command{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{Id: id, Observed: o}}})
	}
	observe("pn1", statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING)
	observe("pn2", statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING)
	observe("pn3", statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED)
	observe("pold", statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING) // stopping: not counted

	gotIdx, comps, statuses := componentStatuses(st, "", false)
	if gotIdx != st.Index() || len(comps) != 2 || comps[0].Name != "api" || comps[1].Name != "web" {
		t.Fatalf("index %d (store %d), components %v: want api, web at the store's index", gotIdx, st.Index(), comps)
	}
	web := statuses["web"]
	if web.Running != 2 || web.Wanted != 3 || web.Failed != 1 {
		t.Fatalf("web: running %d wanted %d failed %d, want 2 3 1", web.Running, web.Wanted, web.Failed)
	}
	if d := web.ActiveDeployment; d == nil || d.Id != "d1" || d.BuildLog != "" {
		t.Fatalf("web active deployment %v: want d1 without its build log", d)
	}
	if len(web.Placements) != 0 {
		t.Fatalf("list has placements: %v", web.Placements)
	}
	if api := statuses["api"]; api.Running != 0 || api.Wanted != 3 || api.ActiveDeployment != nil {
		t.Fatalf("api: %v, want nothing running and no deployment", api)
	}
	// The store's own deployment keeps its build log: the status holds a copy.
	if d, _ := st.Deployment("d1"); d.BuildLog != "compiled" {
		t.Fatalf("store's deployment lost its build log: %q", d.BuildLog)
	}

	apply(&statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{Name: "web", Desired: statev1.DesiredState_DESIRED_STATE_PAUSED}}})
	_, comps, statuses = componentStatuses(st, "web", true)
	if len(comps) != 1 || len(statuses) != 1 {
		t.Fatalf("one component asked, got %d", len(comps))
	}
	web = statuses["web"]
	if web.Wanted != 0 {
		t.Fatalf("paused web wants %d replicas, want 0", web.Wanted)
	}
	if len(web.Placements) != 4 || web.Placements[0].NodeId != "n1" || web.Placements[3].NodeId != "n3" {
		t.Fatalf("placements %v: want all 4, sorted by node", web.Placements)
	}
	if _, comps, _ := componentStatuses(st, "nope", true); len(comps) != 0 {
		t.Fatalf("unknown name gave %v", comps)
	}
}
