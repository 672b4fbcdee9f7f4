package sched

import (
	"strings"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func TestCanaries(t *testing.T) {
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	running := statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING
	s := world(1, node("a", wasm))
	s.Components[0].ActiveDeploymentId = "d2"
	s.Components[0].Spec.Rollout = &statev1.RolloutSpec{CanaryPercent: 25, WindowMs: 2000}
	s.Deployments = append(s.Deployments, &statev1.Deployment{Id: "d2", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, CreateIndex: 2, Canary: true})
	s.Placements = []*statev1.Placement{
		{Id: "p1", ComponentId: "c1", DeploymentId: "d1", NodeId: "a", Desired: run, Observed: running},
		{Id: "p2", ComponentId: "c1", DeploymentId: "d2", NodeId: "a", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_STARTING},
	}
	ks := Canaries(s)
	if len(ks) != 1 || ks[0].Ready || ks[0].Previous != "d1" || ks[0].Percent != 25 || ks[0].Window != 2*time.Second {
		t.Fatalf("starting canary: %+v", ks)
	}
	s.Placements[1].Observed = running
	if ks := Canaries(s); len(ks) != 1 || !ks[0].Ready {
		t.Fatalf("ready canary: %+v", ks)
	}
	// The scheduler keeps the old instance while the canary lasts, and stops it after.
	if plan := Schedule(s); !plan.Empty() {
		t.Fatalf("during the canary: %+v", plan)
	}
	s.Deployments[1].Canary = false
	if plan := Schedule(s); len(plan.Put) != 1 || plan.Put[0].Id != "p1" || plan.Put[0].Desired != stop {
		t.Fatalf("after the canary: %+v", plan)
	}
}

func TestJudgeCanary(t *testing.T) {
	k := Canary{Percent: 10, Window: 2 * time.Second}
	good, bad, base := Counts{Requests: 10}, Counts{Requests: 10, Errors: 5}, Counts{Requests: 100, Errors: 1}
	if v, _ := JudgeCanary(k, bad, base, time.Second); v != Wait {
		t.Fatalf("few errors before the window ends: %v", v)
	}
	if v, msg := JudgeCanary(k, Counts{Requests: 20, Errors: 20}, base, time.Second); v != Fail || !strings.Contains(msg, "20 of 20") {
		t.Fatalf("many errors early: %v %q", v, msg)
	}
	if v, msg := JudgeCanary(k, bad, base, 2*time.Second); v != Fail || !strings.Contains(msg, "5 of 10 requests with 5xx (50.0%), the old one 1 of 100 (1.0%)") {
		t.Fatalf("bad at the end: %v %q", v, msg)
	}
	if v, _ := JudgeCanary(k, good, base, 2*time.Second); v != Promote {
		t.Fatalf("good at the end: %v", v)
	}
	if v, _ := JudgeCanary(k, Counts{Requests: 2, Errors: 2}, base, 2*time.Second); v != Promote {
		t.Fatalf("two unlucky requests fail a canary: %v", v)
	}
	if v, _ := JudgeCanary(k, Counts{}, Counts{}, 2*time.Second); v != Promote {
		t.Fatalf("no traffic: %v", v)
	}
	if c := (Counts{Requests: 5, Errors: 1}).Since(Counts{Requests: 9, Errors: 0}); c.Requests != 0 || c.Errors != 1 {
		t.Fatalf("Since with a counter that went back: %+v", c)
	}
}
