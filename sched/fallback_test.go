package sched_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// A push (d3) that arrives while the previous push (d2) is still in its canary supersedes
// d2's canary: d2 never passed one, so it is marked canary_superseded (fsm.activate) and
// is never the version d3's canary or rollout falls back on; d1, the last version that
// passed, is.
func TestSupersededCanaryIsNotAFallback(t *testing.T) {
	st := fsm.NewStore()
	var idx uint64
	apply := func(cmd *statev1.Command) {
		t.Helper()
		idx++
		cmd.Time = timestamppb.Now()
		if err := st.Apply(idx, cmd); err != nil {
			t.Fatalf("apply %v: %v", cmd, err)
		}
	}
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	spec := &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "hello.wasm"},
		Rollout: &statev1.RolloutSpec{CanaryPercent: 25, WindowMs: 60000}}
	apply(&statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
		Id: "n1", ApiAddr: "n1:7900", RaftAddr: "n1:7901", ProxyAddr: "n1:8080", Runtimes: []statev1.Runtime{statev1.Runtime_RUNTIME_WASM}}}}})
	apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec, ManifestSpec: spec}}}})
	deploy := func(id string) {
		apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
			Id: id, ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING}}}})
		apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
			Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: "sha256:" + id, Spec: spec, Activate: true}}})
	}
	runs := func(p, dep string) {
		apply(&statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: []*statev1.Placement{{
			Id: p, ComponentId: "c1", DeploymentId: dep, NodeId: "n1", Desired: run, Epoch: 1}}}}})
		apply(&statev1.Command{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{
			Id: p, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING}}})
	}
	deploy("d1")
	runs("p1", "d1")
	deploy("d2") // in its canary against d1
	runs("p2", "d2")
	apply(&statev1.Command{Op: &statev1.Command_StartCanary{StartCanary: &statev1.StartCanary{DeploymentId: "d2"}}})
	if d, _ := st.Deployment("d2"); !d.Canary {
		t.Fatal("d2 is not in a canary")
	}
	deploy("d3") // pushed during d2's canary
	ks := sched.Canaries(st.State())
	if len(ks) != 1 || ks[0].Deployment != "d3" {
		t.Fatalf("canaries: %+v", ks)
	}
	if ks[0].Previous != "d1" {
		t.Errorf("d3's canary falls back to %s, a version that never passed its canary; want d1, the last one that did", ks[0].Previous)
	}
	now := time.Now()
	_, began := sched.Rollouts(st.State(), nil, now, time.Minute)
	failed, _ := sched.Rollouts(st.State(), began, now.Add(time.Hour), time.Minute)
	if len(failed) != 1 || failed[0].Previous != "d1" {
		t.Errorf("d3's rollout fails back to %+v; want d1", failed)
	}
}
