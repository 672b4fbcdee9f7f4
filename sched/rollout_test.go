package sched

import (
	"strings"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func TestRolloutsDeadline(t *testing.T) {
	s := world(1, node("a", wasm))
	s.Components[0].ActiveDeploymentId = "d2"
	s.Deployments = append(s.Deployments, &statev1.Deployment{Id: "d2", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, CreateIndex: 2})
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	s.Placements = []*statev1.Placement{
		{Id: "p1", ComponentId: "c1", DeploymentId: "d1", NodeId: "a", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING},
		{Id: "p2", ComponentId: "c1", DeploymentId: "d2", NodeId: "a", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_STARTING},
	}
	now := time.Unix(1000, 0)
	failed, began := Rollouts(s, nil, now, time.Minute)
	if len(failed) != 0 || !began["d2"].Equal(now) {
		t.Fatalf("first seen: %v %v", failed, began)
	}
	if failed, _ := Rollouts(s, began, now.Add(59*time.Second), time.Minute); len(failed) != 0 {
		t.Fatalf("before the deadline: %v", failed)
	}
	failed, again := Rollouts(s, began, now.Add(time.Minute), time.Minute)
	if len(failed) != 1 || failed[0].Previous != "d1" || failed[0].Deployment != "d2" || failed[0].Running != 0 ||
		!strings.Contains(failed[0].Message, "no instance became ready") || !again["d2"].Equal(now) {
		t.Fatalf("at the deadline: %+v %v", failed, again)
	}
	if len(began) != 1 {
		t.Fatal("Rollouts changed its input")
	}
	// Done: the new deployment runs; the clock forgets it.
	s.Placements[1].Observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING
	if failed, next := Rollouts(s, began, now.Add(time.Hour), time.Minute); len(failed) != 0 || len(next) != 0 {
		t.Fatalf("rollout done: %v %v", failed, next)
	}
	// Nothing older serves: nothing to fall back on, and d2 served once: it keeps trying.
	s.Deployments[1].Served = true
	s.Placements[1].Observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED
	s.Placements[0].Observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED
	if failed, next := Rollouts(s, began, now.Add(time.Hour), time.Minute); len(failed) != 0 || len(next) != 0 {
		t.Fatalf("no previous: %v %v", failed, next)
	}
}

func TestRolloutsFailAtOnce(t *testing.T) {
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	failedObs := statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED
	s := world(2, node("a", wasm), node("b", wasm))
	s.Components[0].ActiveDeploymentId = "d2"
	s.Deployments = append(s.Deployments, &statev1.Deployment{Id: "d2", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, CreateIndex: 2})
	s.Placements = []*statev1.Placement{
		{Id: "p1", ComponentId: "c1", DeploymentId: "d1", NodeId: "a", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING},
		{Id: "p2", ComponentId: "c1", DeploymentId: "d2", NodeId: "a", Desired: run, Observed: failedObs, Reason: "readiness check failed: GET / answered 500"},
		{Id: "p3", ComponentId: "c1", DeploymentId: "d2", NodeId: "b", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_STARTING},
	}
	now := time.Unix(1000, 0)
	if failed, _ := Rollouts(s, nil, now, time.Minute); len(failed) != 0 {
		t.Fatalf("one placement still starting: %+v", failed)
	}
	s.Placements[2].Observed, s.Placements[2].Reason = failedObs, "readiness check failed: GET / answered 500"
	failed, _ := Rollouts(s, nil, now, time.Minute)
	if len(failed) != 1 || failed[0].Previous != "d1" || failed[0].Deactivate || !strings.Contains(failed[0].Message, "every instance failed (2 of 2)") ||
		!strings.Contains(failed[0].Message, "answered 500") || !strings.Contains(failed[0].Message, "d1 keeps serving") {
		t.Fatalf("every placement failed: %+v", failed)
	}
	// A first deployment: nothing to fall back on, it is deactivated.
	s.Placements = s.Placements[1:]
	failed, _ = Rollouts(s, nil, now, time.Minute)
	if len(failed) != 1 || !failed[0].Deactivate || failed[0].Previous != "" || !strings.Contains(failed[0].Message, "nothing else serves") {
		t.Fatalf("first deployment failed: %+v", failed)
	}
	// No node can run containers.
	s.Components[0].Runtime = statev1.Runtime_RUNTIME_CONTAINER
	s.Placements = nil
	failed, _ = Rollouts(s, nil, now, time.Minute)
	if len(failed) != 1 || !strings.Contains(failed[0].Message, "no node can run containers (containerd not reachable on any node)") {
		t.Fatalf("no container node: %+v", failed)
	}
}

// A change of env, secrets or limits rolls the instances; when every new one fails its
// readiness check while the old ones serve, the change is failed at once (and at the
// deadline when the new ones only never get ready); once undone (spec_index back), the
// scheduler keeps the old instances and stops the failed ones.
func TestRolloutsSpecRoll(t *testing.T) {
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	running := statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING
	failedObs := statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED
	s := world(2, node("a", wasm), node("b", wasm))
	s.Deployments[0].Served = true
	c := s.Components[0]
	c.SpecIndex, c.PrevSpecIndex, c.PrevSpec = 9, 4, &statev1.ComponentSpec{ScaleMax: 10}
	s.Placements = []*statev1.Placement{
		{Id: "old-a", ComponentId: "c1", DeploymentId: "d1", NodeId: "a", Desired: run, Observed: running, SpecIndex: 4},
		{Id: "old-b", ComponentId: "c1", DeploymentId: "d1", NodeId: "b", Desired: run, Observed: running, SpecIndex: 4},
		{Id: "new-a", ComponentId: "c1", DeploymentId: "d1", NodeId: "a", Desired: run, Observed: failedObs, SpecIndex: 9, Reason: "readiness check failed: GET / answered 500"},
		{Id: "new-b", ComponentId: "c1", DeploymentId: "d1", NodeId: "b", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_STARTING, SpecIndex: 9},
	}
	now := time.Unix(1000, 0)
	failed, began := Rollouts(s, nil, now, time.Minute)
	if len(failed) != 0 || !began["spec/c1/9"].Equal(now) {
		t.Fatalf("one new instance still starting: %+v %v", failed, began)
	}
	failed, _ = Rollouts(s, began, now.Add(time.Minute), time.Minute)
	if len(failed) != 1 || failed[0].SpecIndex != 9 || failed[0].Previous != "" || failed[0].Deactivate ||
		!strings.Contains(failed[0].Message, "0/2 new instances running after 1m0s") {
		t.Fatalf("at the deadline: %+v", failed)
	}
	s.Placements[3].Observed, s.Placements[3].Reason = failedObs, "readiness check failed: GET / answered 500"
	failed, _ = Rollouts(s, nil, now, time.Minute)
	if len(failed) != 1 || failed[0].SpecIndex != 9 || !strings.Contains(failed[0].Message, "every new instance failed (2 of 2)") ||
		!strings.Contains(failed[0].Message, "previous configuration keep serving") {
		t.Fatalf("every new instance failed: %+v", failed)
	}
	// Without old instances serving there is nothing to fall back on: no verdict.
	for _, p := range s.Placements[:2] {
		p.Observed = failedObs
	}
	if failed, _ := Rollouts(s, nil, now, time.Minute); len(failed) != 0 {
		t.Fatalf("nothing old serves: %+v", failed)
	}
	for _, p := range s.Placements[:2] {
		p.Observed = running
	}

	// Undone (FailSpecRoll): the old placements are the current ones, the failed ones stop.
	c.SpecIndex, c.PrevSpec = 4, nil
	if failed, _ := Rollouts(s, nil, now, time.Minute); len(failed) != 0 {
		t.Fatalf("after the undo: %+v", failed)
	}
	plan := Schedule(s)
	stopped := map[string]bool{}
	for _, p := range plan.Put {
		if p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_STOP {
			stopped[p.Id] = true
		} else {
			t.Fatalf("after the undo the plan starts %s", p.Id)
		}
	}
	if len(stopped) != 2 || !stopped["new-a"] || !stopped["new-b"] {
		t.Fatalf("after the undo the plan stops %v", stopped)
	}
}

// A new version that fails its readiness check while no instance of the previous one runs
// (a component paused during a rollout, an exclusive one whose old instance stopped first,
// old instances lost or crashed) falls back to the newest version that served, whatever
// the component's scale: only a deployment with nothing older to fall back on is
// deactivated.
func TestRolloutsFallBackToLastServedWhenNothingRuns(t *testing.T) {
	s := world(1, node("a", wasm))
	s.Components[0].Spec.ScaleMin = 1
	s.Components[0].ActiveDeploymentId = "d2"
	s.Deployments[0].Served, s.Deployments[0].CreateIndex = true, 1
	s.Deployments = append(s.Deployments, &statev1.Deployment{Id: "d2", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, CreateIndex: 2})
	s.Placements = []*statev1.Placement{{Id: "d2-a-0", ComponentId: "c1", DeploymentId: "d2", NodeId: "a",
		Desired: statev1.PlacementDesired_PLACEMENT_DESIRED_RUN, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED,
		Reason: ReadinessFailure + ": GET / answered 500"}}
	failed, _ := Rollouts(s, nil, time.Unix(1000, 0), time.Minute)
	if len(failed) != 1 {
		t.Fatalf("failures: %+v", failed)
	}
	if f := failed[0]; f.Deactivate || f.Previous != "d1" {
		t.Fatalf("d2 failed with d1 (ready, served) available: deactivate=%v previous=%q (%s)", f.Deactivate, f.Previous, f.Message)
	}
}
