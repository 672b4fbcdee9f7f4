package leader

import (
	"context"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

type fixedCounts map[string]sched.Counts

func (f fixedCounts) VersionCounts() map[string]sched.Counts { return f }

// A canary is judged against "every older deployment of the component" (sched.Canary.Older),
// failed ones included, and the proxies keep each deployment's counts for as long as the
// node runs. So an earlier canary that failed for answering 5xx raises the baseline, and
// the next canary passes with an error rate far above that of the version that serves:
// here d1 answers 0% 5xx, the failed d2 answered 100%, and d3, answering 20% 5xx, is
// promoted.
func TestRevCanaryBaselineExcludesFailedVersions(t *testing.T) {
	f := newFake(t, &statev1.State{})
	ctx := context.Background()
	apply := func(cmd *statev1.Command) {
		t.Helper()
		if _, err := f.Apply(ctx, cmd); err != nil {
			t.Fatalf("apply %v: %v", cmd, err)
		}
	}
	spec := &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "hello.wasm"},
		Rollout: &statev1.RolloutSpec{CanaryPercent: 25, WindowMs: 1000}}
	apply(&statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
		Id: "n1", ApiAddr: "n1:7900", RaftAddr: "n1:7901", ProxyAddr: "n1:8080", Runtimes: []statev1.Runtime{wasm}}}}})
	apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "hello", Runtime: wasm, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec, ManifestSpec: spec}}}})
	deploy := func(id string) {
		apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
			Id: id, ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING}}}})
		apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
			Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: "sha256:" + id, Spec: spec, Activate: true}}})
	}
	place := func(p, dep string, d statev1.PlacementDesired, epoch uint64) {
		apply(&statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: []*statev1.Placement{{
			Id: p, ComponentId: "c1", DeploymentId: dep, NodeId: "n1", Desired: d, Epoch: epoch}}}}})
		if d == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
			apply(&statev1.Command{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{
				Id: p, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING}}})
		}
	}
	run, stop := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN, statev1.PlacementDesired_PLACEMENT_DESIRED_STOP
	deploy("d1")
	place("p1", "d1", run, 1)
	deploy("d2") // a canary that failed: all 5xx
	place("p2", "d2", run, 1)
	apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: "d2", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, Fallback: "d1", Error: "canary failed"}}})
	place("p2", "d2", stop, 2)
	deploy("d3")
	place("p3", "d3", run, 1)
	if d, _ := f.st.Deployment("d3"); !d.Canary {
		t.Fatal("d3 is not in a canary")
	}
	counts := fixedCounts{
		"d1": {Requests: 1000, Errors: 0},
		"d2": {Requests: 200, Errors: 200},
		"d3": {Requests: 100, Errors: 19},
	}
	r := NewRollouts(f, counts, RolloutConfig{Every: time.Second, Deadline: time.Minute}, quiet())
	r.Check(ctx, time.Now()) // starts d3's window
	if d, _ := f.st.Deployment("d3"); d.CanaryStart == nil {
		t.Fatal("d3's canary window did not start")
	}
	f.commands()
	r.Check(ctx, time.Now().Add(5*time.Second)) // after the window
	d3, _ := f.st.Deployment("d3")
	if d3.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		t.Fatalf("a canary answering 19%% 5xx beside a version answering 0%% ended %s (canary %v): the failed d2's counts were its baseline; commands %v",
			d3.Status, d3.Canary, f.commands())
	}
}

// Every component has a canary by default (spec.Canary: 10% for 30s). An exclusive
// component's old instance is stopped before the new one starts (never two at once), so
// when the canary is judged no older version "has an instance running" and
// sched.Canary.Previous is empty; judgeCanaries then treats a Fail verdict like a pass
// ("promoted (or failed with nothing older left to serve)"): the new version, answering
// 100% 5xx, is promoted and the log says "canary passed". The previous version is still
// a ready deployment that could be activated again, as a failed rollout does.
func TestRevFailedCanaryWithoutRunningPreviousIsNotPromoted(t *testing.T) {
	f := newFake(t, &statev1.State{})
	ctx := context.Background()
	apply := func(cmd *statev1.Command) {
		t.Helper()
		if _, err := f.Apply(ctx, cmd); err != nil {
			t.Fatalf("apply %v: %v", cmd, err)
		}
	}
	spec := &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 1, Exclusive: true, Wasm: &statev1.WasmSpec{Module: "hello.wasm"}}
	apply(&statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
		Id: "n1", ApiAddr: "n1:7900", RaftAddr: "n1:7901", ProxyAddr: "n1:8080", Runtimes: []statev1.Runtime{wasm}}}}})
	apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "hello", Runtime: wasm, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec, ManifestSpec: spec}}}})
	deploy := func(id string) {
		apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
			Id: id, ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING}}}})
		apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
			Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: "sha256:" + id, Spec: spec, Activate: true}}})
	}
	observe := func(p string, o statev1.PlacementObserved) {
		apply(&statev1.Command{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{Id: p, Observed: o}}})
	}
	place := func(p, dep string, d statev1.PlacementDesired, epoch uint64) {
		apply(&statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: []*statev1.Placement{{
			Id: p, ComponentId: "c1", DeploymentId: dep, NodeId: "n1", Desired: d, Epoch: epoch}}}}})
	}
	run, stop := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN, statev1.PlacementDesired_PLACEMENT_DESIRED_STOP
	deploy("d1")
	place("p1", "d1", run, 1)
	observe("p1", statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING)
	deploy("d2")
	if d, _ := f.st.Deployment("d2"); !d.Canary {
		t.Fatal("d2 is not in a canary")
	}
	// Exclusive: the old instance stops first, then the new one starts.
	place("p1", "d1", stop, 2)
	observe("p1", statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED)
	place("p2", "d2", run, 1)
	observe("p2", statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING)

	counts := fixedCounts{"d1": {Requests: 1000}, "d2": {Requests: 100, Errors: 100}}
	r := NewRollouts(f, counts, RolloutConfig{Every: time.Second, Deadline: time.Minute}, quiet())
	r.Check(ctx, time.Now())
	if d, _ := f.st.Deployment("d2"); d.CanaryStart == nil {
		t.Fatal("d2's canary window did not start")
	}
	r.Check(ctx, time.Now().Add(time.Hour))
	c, _ := f.st.ComponentByID("c1")
	d2, _ := f.st.Deployment("d2")
	if d2.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED || c.ActiveDeploymentId != "d1" {
		t.Fatalf("a canary answering 100%% 5xx ended %s, canary %v, active %s; logs %q", d2.Status, d2.Canary, c.ActiveDeploymentId, f.logs)
	}
}
