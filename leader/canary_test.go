package leader

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/fsmtest"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

type fixedCounts map[string]sched.Counts

func (f fixedCounts) VersionCounts() map[string]sched.Counts { return f }

// canaryHistory is a fake store holding component c1 (spec) on node n1, and the history
// writing into it.
func canaryHistory(t *testing.T, spec *statev1.ComponentSpec) (*fakeStore, *fsmtest.History) {
	f := newFake(t, &statev1.State{})
	return f, fsmtest.New(t, func(cmd *statev1.Command) error {
		_, err := f.Apply(context.Background(), cmd)
		return err
	}, spec)
}

// A canary is judged against its previous version only, on what that version answered
// since the window began: neither an earlier failed canary's 5xx (d2, 100%) nor the
// previous version's lifetime counts raise the baseline, so d3, answering 19% 5xx beside
// d1's 0%, fails.
func TestCanaryBaselineIsThePreviousVersionSinceTheWindow(t *testing.T) {
	f, h := canaryHistory(t, &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "hello.wasm"},
		Rollout: &statev1.RolloutSpec{CanaryPercent: 25, WindowMs: 1000}})
	ctx := context.Background()
	h.Deploy("d1")
	h.Runs("p1", "d1")
	h.Deploy("d2") // a canary that failed: all 5xx
	h.Runs("p2", "d2")
	h.Apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: "d2", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, Fallback: "d1", Error: "canary failed"}}})
	h.Place("p2", "d2", statev1.PlacementDesired_PLACEMENT_DESIRED_STOP, 2)
	h.Deploy("d3")
	h.Runs("p3", "d3")
	if d, _ := f.st.Deployment("d3"); !d.Canary {
		t.Fatal("d3 is not in a canary")
	}
	counts := fixedCounts{
		"d1": {Requests: 1000, Errors: 300}, // a bad spell of d1's, before d3's window
		"d2": {Requests: 200, Errors: 200},
		"d3": {Requests: 100, Errors: 19},
	}
	r := NewRollouts(f, counts, RolloutConfig{Every: time.Second, Deadline: time.Minute}, quiet())
	r.Check(ctx, time.Now()) // starts d3's window
	if d, _ := f.st.Deployment("d3"); d.CanaryStart == nil {
		t.Fatal("d3's canary window did not start")
	}
	f.commands()
	counts["d1"] = sched.Counts{Requests: 1300, Errors: 300} // 300 requests, no 5xx in the window
	r.Check(ctx, time.Now().Add(5*time.Second))              // after the window
	d3, _ := f.st.Deployment("d3")
	if d3.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		t.Fatalf("a canary answering 19%% 5xx beside a version answering 0%% in its window ended %s (canary %v): commands %v",
			d3.Status, d3.Canary, f.commands())
	}
	if c, _ := f.st.ComponentByID("c1"); c.ActiveDeploymentId != "d1" {
		t.Fatalf("after d3's failed canary %s is active, want d1", c.ActiveDeploymentId)
	}
	if want := "the old one 0 of 300 (0.0%)"; !strings.Contains(d3.Error, want) {
		t.Fatalf("d3's reason %q does not give the baseline of the window (%q)", d3.Error, want)
	}
}

// An exclusive component's old instance stops before the new one starts, so when its
// canary is judged no older version runs: a failing canary then falls back on the newest
// version that served (activated again, as a failed rollout does), never promoted nor
// logged as passed.
func TestFailedCanaryWithoutRunningPreviousFallsBack(t *testing.T) {
	f, h := canaryHistory(t, &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 1, Exclusive: true, Wasm: &statev1.WasmSpec{Module: "hello.wasm"}})
	ctx := context.Background()
	h.Deploy("d1")
	h.Runs("p1", "d1")
	h.Deploy("d2")
	if d, _ := f.st.Deployment("d2"); !d.Canary {
		t.Fatal("d2 is not in a canary")
	}
	// Exclusive: the old instance stops first, then the new one starts.
	h.Place("p1", "d1", statev1.PlacementDesired_PLACEMENT_DESIRED_STOP, 2)
	h.Observe("p1", statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED)
	h.Runs("p2", "d2")

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
	if last := f.logs[len(f.logs)-1]; strings.Contains(last, "passed") || !strings.Contains(last, "canary failed") || !strings.Contains(last, "d1 serves again") {
		t.Fatalf("the component's log says %q", last)
	}
}
