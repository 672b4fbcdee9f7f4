package dataplane

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
)

// pruneExec is a fake executor that keeps standby instances: the reconciler prunes them.
type pruneExec struct {
	*fakeExec
	mu   sync.Mutex
	kept map[[2]string]bool // component, deployment → kept by the last prune
}

func (e *pruneExec) PruneStandby(_ context.Context, keep func(component, deploymentID string) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.kept {
		e.kept[k] = keep(k[0], k[1])
	}
}

// The reconciler keeps a standby of a component's active deployment while the component
// may start on this node next (paused, at zero, running here) and has it dropped when the
// component moves, is redeployed, deleted or exclusive, or the node drains.
func TestReconcilerPrunesStandby(t *testing.T) {
	ex := &pruneExec{fakeExec: newFakeExec(), kept: map[[2]string]bool{{"hello", "d1"}: true}}
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: ex})
	h.component(false, "v1")
	h.apply(registerNode(self, "10.0.0.1:8080"), registerNode("n2", "10.0.0.2:8080"))
	want := h.dp.rec.wantStandby
	check := func(what string, wantKeep bool) {
		t.Helper()
		if got := want("hello", "d1"); got != wantKeep {
			t.Errorf("%s: keep = %v, want %v", what, got, wantKeep)
		}
	}
	check("at zero", true)
	waitFor(t, 5*time.Second, func() error {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		if !ex.kept[[2]string{"hello", "d1"}] {
			return fmt.Errorf("the reconciler dropped a wanted standby")
		}
		return nil
	})
	h.place("p2", "d1", "n2", run, 1)
	check("moved to n2", false)
	waitFor(t, 5*time.Second, func() error {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		if ex.kept[[2]string{"hello", "d1"}] {
			return fmt.Errorf("the reconciler kept the standby of a component that moved")
		}
		return nil
	})
	h.place("p1", "d1", self, run, 1)
	check("running here too", true)
	h.apply(&statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{
		Name: "hello", Desired: statev1.DesiredState_DESIRED_STATE_PAUSED}}})
	h.apply(deletePlacements("p1"))
	check("paused", true)
	if want("other", "d1") {
		t.Error("keep for an unknown component")
	}
	h.apply(&statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{
		Id: self, Status: statev1.NodeStatus_NODE_STATUS_DRAINING}}})
	check("node draining", false)
	h.apply(&statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{
		Id: self, Status: statev1.NodeStatus_NODE_STATUS_READY}}})
	check("node ready again", true)
	h.deployment("d2", "v2")
	h.apply(activate("c1", "d2"))
	check("redeployed", false)
}
