package dataplane

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/testkit"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/sched"
)

const (
	run     = statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	stop    = statev1.PlacementDesired_PLACEMENT_DESIRED_STOP
	running = statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING
	stopped = statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED
	failed  = statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED
)

func fakeHarness(t *testing.T) (*harness, *fakeExec) {
	ex := newFakeExec()
	return newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: ex}), ex
}

// The reconciler starts what is placed on its node, reports it running, routes to it, and
// stops it when the placement is desired stopped or removed; placements of other nodes it
// leaves alone.
func TestReconcilerFollowsPlacements(t *testing.T) {
	h, ex := fakeHarness(t)
	h.component(false, "v1")
	h.apply(registerNode("n2", "10.0.0.2:8080"))
	h.place("p1", "d1", self, run, 1)
	h.place("p2", "d1", "n2", run, 1)
	h.waitObserved("p1", running)
	if !ex.isRunning("p1") || ex.isRunning("p2") {
		t.Fatalf("executor runs %v; want p1 only", ex.running)
	}
	testkit.Eventually(t, 5*time.Second, func() error {
		if code, body := h.get(); code != 200 || body != "fake d1" {
			return fmt.Errorf("local request: %d %q", code, body)
		}
		return nil
	})
	if p := h.placement("p2"); p.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_UNSPECIFIED {
		t.Fatalf("n1 reported on n2's placement: %v", p)
	}

	h.place("p1", "d1", self, stop, 1)
	h.waitObserved("p1", stopped)
	if ex.isRunning("p1") {
		t.Fatal("p1 still runs after it was desired stopped")
	}
	if tg := h.dp.Router().Lookup("hello"); len(tg.Local) != 0 {
		t.Fatalf("stopped instance still routed: %+v", tg)
	}

	h.place("p3", "d1", self, run, 1)
	h.waitObserved("p3", running)
	h.apply(deletePlacements("p1", "p3"))
	testkit.Eventually(t, 5*time.Second, func() error {
		if ex.isRunning("p3") || h.dp.Running("hello") != 0 {
			return fmt.Errorf("p3 still runs after its placement was removed")
		}
		return nil
	})
}

// A failing start is reported FAILED with its reason and retried after a backoff that
// doubles; a crashed instance is reported and restarted.
func TestReconcilerRestartsWithBackoff(t *testing.T) {
	h, ex := fakeHarness(t)
	ex.failStarts = 2
	h.component(false, "v1")
	h.place("p1", "d1", self, run, 1)
	p := h.waitObserved("p1", failed)
	if p.Reason != "boom" {
		t.Fatalf("reason %q, want the executor's error", p.Reason)
	}
	h.waitObserved("p1", running)
	st := ex.startTimes()
	if len(st) != 3 {
		t.Fatalf("%d starts, want 3 (two failures, then success)", len(st))
	}
	if d1, d2 := st[1].Sub(st[0]), st[2].Sub(st[1]); d1 < restartBackoffMin || d2 < 2*restartBackoffMin {
		t.Fatalf("restarts after %s and %s; want at least %s and %s", d1, d2, restartBackoffMin, 2*restartBackoffMin)
	}
	if !strings.Contains(strings.Join(logLines(h), "\n"), "start failed: boom") {
		t.Fatalf("component log lacks the failure: %q", logLines(h))
	}

	ex.crash("p1")
	p = h.waitObserved("p1", failed)
	if p.Reason != "segfault" {
		t.Fatalf("crash reason %q", p.Reason)
	}
	h.waitObserved("p1", running)
	if got := len(ex.startTimes()); got != 4 {
		t.Fatalf("%d starts after the crash, want 4", got)
	}
}

// The node reports how many starts failed in a row with FAILED (Placement.failures, which
// the scheduler reads to place the instance elsewhere) and RUNNING resets it; a replacement
// placed with the count of the one it replaces waits the backoff of that count before its
// first start.
func TestReconcilerReportsFailuresInARow(t *testing.T) {
	h, ex := fakeHarness(t)
	ex.failStarts = sched.RescheduleAfter
	h.component(false, "v1")
	h.place("p1", "d1", self, run, 1)
	testkit.Eventually(t, 10*time.Second, func() error {
		if p := h.placement("p1"); p.Failures != sched.RescheduleAfter {
			return fmt.Errorf("p1: %v", p)
		}
		return nil
	})
	if p := h.waitObserved("p1", running); p.Failures != 0 {
		t.Fatalf("running, failures %d", p.Failures)
	}
	h.apply(deletePlacements("p1"))

	n := len(ex.startTimes())
	placed := time.Now()
	h.apply(&statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: []*statev1.Placement{{
		Id: "p2", ComponentId: "c1", DeploymentId: "d1", NodeId: self, Desired: run, Epoch: 1, Failures: sched.RescheduleAfter}}}}})
	h.waitObserved("p2", running)
	if st := ex.startTimes(); len(st) != n+1 || st[n].Sub(placed) < backoff(sched.RescheduleAfter) {
		t.Fatalf("the replacement started %s after it was placed, want after %s", st[len(st)-1].Sub(placed), backoff(sched.RescheduleAfter))
	}
}

// An exclusive instance stops when this node's lease lapses (heartbeats unanswered), is
// reported FAILED and unrouted, and starts again once the lease is renewed; a component
// that is not exclusive keeps running meanwhile.
func TestReconcilerFencesExclusiveWhenLeaseLapses(t *testing.T) {
	h, ex := fakeHarness(t)
	h.component(true, "v1")
	h.place("p1", "d1", self, run, 1)
	h.waitObserved("p1", running)
	h.apply(createComponent("c2", "other", false), createDeployment("d2", "c2", h.artifact("other")), activate("c2", "d2"))
	h.apply(putPlacement("p2", "c2", "d2", self, run))
	h.waitObserved("p2", running)

	h.unreachable.Store(true)
	p := h.waitObserved("p1", failed)
	if !strings.Contains(p.Reason, "lease lost") {
		t.Fatalf("fenced placement reason %q", p.Reason)
	}
	if ex.isRunning("p1") {
		t.Fatal("exclusive instance still runs without a lease")
	}
	if tg := h.dp.Router().Lookup("hello"); len(tg.Local) != 0 || tg.OnDemand != nil {
		t.Fatalf("fenced exclusive component still routed here: %+v", tg)
	}
	if !ex.isRunning("p2") {
		t.Fatal("a component that is not exclusive was stopped with the lease")
	}

	// The lease comes back: the instance runs again and is reported RUNNING. Under -race on
	// a loaded machine the harness's 60 ms lease can lapse once more on its own (a stalled
	// heartbeat loop), fencing the restarted instance again until the next answer; so wait
	// for both to hold together rather than checking the executor once on the report.
	h.unreachable.Store(false)
	h.waitObserved("p1", running)
	testkit.Eventually(t, 20*time.Second, func() error {
		if p := h.placement("p1"); !ex.isRunning("p1") || p.GetObserved() != running {
			return fmt.Errorf("exclusive instance not restarted once the lease came back: running %v, %v", ex.isRunning("p1"), p)
		}
		return nil
	})
}

func logLines(h *harness) []string {
	var out []string
	for _, l := range h.logs.Recent("hello", 100) {
		out = append(out, l.Text)
	}
	return out
}
