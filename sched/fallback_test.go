package sched_test

import (
	"testing"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/fsmtest"
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
	h := fsmtest.New(t, func(cmd *statev1.Command) error { idx++; return st.Apply(idx, cmd) },
		&statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "hello.wasm"},
			Rollout: &statev1.RolloutSpec{CanaryPercent: 25, WindowMs: 60000}})
	h.Deploy("d1")
	h.Runs("p1", "d1")
	h.Deploy("d2") // in its canary against d1
	h.Runs("p2", "d2")
	h.Apply(&statev1.Command{Op: &statev1.Command_StartCanary{StartCanary: &statev1.StartCanary{DeploymentId: "d2"}}})
	if d, _ := st.Deployment("d2"); !d.Canary {
		t.Fatal("d2 is not in a canary")
	}
	h.Deploy("d3") // pushed during d2's canary
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
