package dataplane

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/testkit"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
)

// pruneExec is a fake executor that keeps standby instances: the reconciler prunes them.
type pruneExec struct {
	*fakeExec
	mu   sync.Mutex
	kept map[standbyOf]bool // kept by the last prune
}

// standbyOf is what a standby was prepared for.
type standbyOf struct {
	component, deployment string
	specIndex             uint64
}

func (e *pruneExec) PruneStandby(_ context.Context, keep func(component, deploymentID string, specIndex uint64) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.kept {
		e.kept[k] = keep(k.component, k.deployment, k.specIndex)
	}
}

// waitKept waits until the last prune kept (or dropped) the standby sb.
func (e *pruneExec) waitKept(t *testing.T, sb standbyOf, want bool) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, func() error {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.kept[sb] != want {
			return fmt.Errorf("standby %v kept = %v, want %v", sb, !want, want)
		}
		return nil
	})
}

// The reconciler keeps a standby of a component's active deployment while the component
// may start on this node next (paused, at zero, running here) and has it dropped when the
// component moves, is redeployed, deleted or exclusive, its secrets change, or the node drains.
func TestReconcilerPrunesStandby(t *testing.T) {
	ex := &pruneExec{fakeExec: newFakeExec(), kept: map[standbyOf]bool{}}
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: ex})
	h.component(false, "v1")
	c, err := h.dp.state().Component("hello")
	if err != nil {
		t.Fatal(err)
	}
	sb := standbyOf{"hello", "d1", c.SpecIndex}
	ex.mu.Lock()
	ex.kept[sb] = true
	ex.mu.Unlock()
	h.apply(registerNode(self, "10.0.0.1:8080"), registerNode("n2", "10.0.0.2:8080"))
	want := h.dp.rec.wantStandby
	check := func(what string, wantKeep bool) {
		t.Helper()
		if got := want(sb.component, sb.deployment, sb.specIndex); got != wantKeep {
			t.Errorf("%s: keep = %v, want %v", what, got, wantKeep)
		}
	}
	check("at zero", true)
	ex.waitKept(t, sb, true)
	h.place("p2", "d1", "n2", run, 1)
	check("moved to n2", false)
	ex.waitKept(t, sb, false)
	h.place("p1", "d1", self, run, 1)
	check("running here too", true)
	h.apply(&statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{
		Name: "hello", Desired: statev1.DesiredState_DESIRED_STATE_PAUSED}}})
	h.apply(deletePlacements("p1"))
	check("paused", true)
	if want("other", "d1", sb.specIndex) {
		t.Error("keep for an unknown component")
	}
	h.apply(&statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{
		Id: self, Status: statev1.NodeStatus_NODE_STATUS_DRAINING}}})
	check("node draining", false)
	h.apply(&statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{
		Id: self, Status: statev1.NodeStatus_NODE_STATUS_READY}}})
	check("node ready again", true)
	ex.waitKept(t, sb, true)
	// A new secret (or variable) changes the component's spec_index: a standby prepared
	// with the old environment is dropped now, not kept until the next start.
	h.apply(&statev1.Command{Op: &statev1.Command_PutSecret{PutSecret: &statev1.PutSecret{
		Component: "hello", Name: "TOKEN", KeyId: "k1", Nonce: make([]byte, 12), Ciphertext: []byte("sealed")}}})
	check("secret changed", false)
	ex.waitKept(t, sb, false)
	c, err = h.dp.state().Component("hello")
	if err != nil {
		t.Fatal(err)
	}
	if c.SpecIndex == sb.specIndex || !want(sb.component, sb.deployment, c.SpecIndex) {
		t.Errorf("after the secret: spec_index %d (was %d), keep for it %v", c.SpecIndex, sb.specIndex, want(sb.component, sb.deployment, c.SpecIndex))
	}
	sb.specIndex = c.SpecIndex
	h.deployment("d2", "v2")
	h.apply(activate("c1", "d2"))
	check("redeployed", false)
}
