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
