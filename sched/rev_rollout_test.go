package sched

import (
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// A component paused during a rollout (or whose old instances were all lost with their
// nodes, or all crashed) has no instance of its previous version running when the new one
// fails its readiness check. Rollouts then treats the new version like a first deployment:
// it is failed and the component is left with NO active deployment ("nothing else
// serves"), although d1, ready and served before, could simply be activated again. After
// `v9 component resume` the component serves nothing until the user rolls back by hand.
func TestRevFailedRolloutFallsBackToLastServedWhenNothingRuns(t *testing.T) {
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
