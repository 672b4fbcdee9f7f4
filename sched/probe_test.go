package sched

import (
	"strings"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// scaledToZero is a component at zero replicas whose deployment d1 served and whose new
// deployment d2 is active and has not served.
func scaledToZero() *statev1.State {
	s := world(0, node("a", wasm), node("b", wasm))
	s.Deployments[0].Served, s.Deployments[0].CreateIndex = true, 1
	s.Components[0].ActiveDeploymentId = "d2"
	s.Deployments = append(s.Deployments, &statev1.Deployment{Id: "d2", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, CreateIndex: 2})
	return s
}

// A component scaled to zero gets one instance of a deployment that never served (its
// readiness probe); once it served, none again.
func TestScaledToZeroProbesNewDeployment(t *testing.T) {
	s := scaledToZero()
	commit(s, Schedule(s))
	if n := len(wanted(s, "d2")); n != 1 || len(s.Placements) != 1 {
		t.Fatalf("want one probe of d2, got %v", s.Placements)
	}
	commit(s, Schedule(s)) // stable while it starts
	if len(s.Placements) != 1 {
		t.Fatalf("placements: %v", s.Placements)
	}
	observe(s, running)
	s.Deployments[1].Served = true // fsm marks it at its first RUNNING
	commit(s, Schedule(s))
	if n := len(wanted(s, "d2")); n != 0 {
		t.Fatalf("served: want zero instances again, got %d", n)
	}
	// A served deployment at zero replicas gets no instance.
	observe(s, running)
	commit(s, Schedule(s))
	if len(s.Placements) != 0 {
		t.Fatalf("scaled to zero: %v", s.Placements)
	}
}

// The probe is judged like a rollout of one instance, the newest served deployment (no
// instance running: it is served on demand) being the one to activate again.
func TestScaledToZeroProbeFailureFallsBack(t *testing.T) {
	s := scaledToZero()
	commit(s, Schedule(s))
	now := time.Unix(1000, 0)
	failed, began := Rollouts(s, nil, now, time.Minute)
	if len(failed) != 0 || !began["d2"].Equal(now) {
		t.Fatalf("probe starting: %+v %v", failed, began)
	}
	failed, _ = Rollouts(s, began, now.Add(time.Minute), time.Minute)
	if len(failed) != 1 || failed[0].Previous != "d1" || failed[0].Replicas != 1 || !strings.Contains(failed[0].Message, "0/1 instances running") {
		t.Fatalf("deadline: %+v", failed)
	}
	s.Placements[0].Observed, s.Placements[0].Reason = statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, ReadinessFailure+": GET / answered 500"
	failed, _ = Rollouts(s, nil, now, time.Minute)
	if len(failed) != 1 || failed[0].Previous != "d1" || failed[0].Deactivate || !strings.Contains(failed[0].Message, "every instance failed (1 of 1)") {
		t.Fatalf("probe failed: %+v", failed)
	}
	// The probe passed: done, nothing to judge.
	s.Placements[0].Observed = running
	if failed, next := Rollouts(s, nil, now, time.Minute); len(failed) != 0 || len(next) != 0 {
		t.Fatalf("probe running: %+v %v", failed, next)
	}
	// A first deployment at zero replicas whose probe fails is deactivated.
	s.Deployments = s.Deployments[1:]
	s.Placements[0].Observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED
	if failed, _ := Rollouts(s, nil, now, time.Minute); len(failed) != 1 || !failed[0].Deactivate {
		t.Fatalf("first deployment: %+v", failed)
	}
}
