package deployments

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// storeWriter commits commands to an fsm.Store, as a one-node leader would (no Raft). Those
// refuse matches fail as a write lost with its leader, changing nothing; after runs after
// every committed write.
type storeWriter struct {
	st *fsm.Store

	mu     sync.Mutex
	index  uint64
	refuse func(*statev1.Command) bool
	after  func(*statev1.Command)
}

func (w *storeWriter) Apply(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	w.mu.Lock()
	if w.refuse != nil && w.refuse(cmd) {
		w.mu.Unlock()
		return 0, errors.New("leadership lost")
	}
	cmd = proto.Clone(cmd).(*statev1.Command)
	cmd.Time = timestamppb.Now()
	w.index++
	idx := w.index
	err := w.st.Apply(idx, cmd)
	after := w.after
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if after != nil {
		after(cmd)
	}
	return idx, nil
}

func (w *storeWriter) ConsistentBarrier(ctx context.Context) error { return ctx.Err() }

type noLogs struct{}

func (noLogs) Append(_, _, _, _ string) {}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestRollbackIsOneWrite: a rollback gives the component its target's manifest spec and
// makes the target active in one entry. No reader (the scheduler) ever sees the target's
// spec with the current version still active (it would roll that version's instances with
// the target's manifest), and a rollback whose write fails leaves the component as it was.
func TestRollbackIsOneWrite(t *testing.T) {
	st := fsm.NewStore()
	w := &storeWriter{st: st}
	ctx := context.Background()
	apply := func(cmd *statev1.Command) {
		t.Helper()
		if _, err := w.Apply(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	specWith := func(greeting string) *statev1.ComponentSpec {
		return &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Env: map[string]string{"GREETING": greeting}, Wasm: &statev1.WasmSpec{Module: "app.wasm"}}
	}
	apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "web", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1, Spec: specWith("one"), ManifestSpec: specWith("one"),
	}}}})
	for i, g := range []string{"one", "two"} {
		id := []string{"d1", "d2"}[i]
		apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
			Id: id, ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
		}}}})
		apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
			Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: "sha256:" + id, Spec: specWith(g), Activate: true,
		}}})
	}
	before, _ := st.Component("web")
	if before.ActiveDeploymentId != "d2" || before.Spec.Env["GREETING"] != "two" {
		t.Fatalf("setup: active %s, spec %v", before.ActiveDeploymentId, before.Spec)
	}

	// Every state a reader can see: the manifest spec is the active deployment's.
	var seen []string
	w.after = func(cmd *statev1.Command) {
		seen = append(seen, string(cmd.ProtoReflect().WhichOneof(cmd.ProtoReflect().Descriptor().Oneofs().ByName("op")).Name()))
		c, _ := st.Component("web")
		d, _ := st.Deployment(c.ActiveDeploymentId)
		if !proto.Equal(c.ManifestSpec, d.GetSpec()) {
			t.Errorf("after %s: active %s (GREETING=%s) with the manifest spec GREETING=%s", seen[len(seen)-1], d.GetId(), d.GetSpec().GetEnv()["GREETING"], c.ManifestSpec.GetEnv()["GREETING"])
		}
	}
	s := New(Config{State: st, Writer: w, Logs: noLogs{}, Logger: quiet()})
	resp, err := s.Rollback(ctx, "web", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 {
		t.Errorf("a rollback wrote %d entries %v, want 1", len(seen), seen)
	}
	c := resp.Component
	if c.ActiveDeploymentId != "d1" || c.Spec.Env["GREETING"] != "one" || c.ManifestSpec.Env["GREETING"] != "one" || c.RollbackIndex != resp.Index {
		t.Fatalf("after the rollback: active %s, spec %v, manifest %v, rollback index %d (want %d)", c.ActiveDeploymentId, c.Spec.Env, c.ManifestSpec.Env, c.RollbackIndex, resp.Index)
	}
	if c.SpecIndex != before.SpecIndex {
		t.Errorf("the rollback rolled the instances (spec_index %d -> %d): the activation replaces them anyway", before.SpecIndex, c.SpecIndex)
	}

	// A rollback whose activation is lost changes nothing.
	before, _ = st.Component("web")
	w.after = nil
	w.refuse = func(cmd *statev1.Command) bool { return cmd.GetActivateDeployment() != nil }
	if _, err := s.Rollback(ctx, "web", "d2"); err == nil {
		t.Fatal("a rollback whose write failed: want an error")
	}
	if after, _ := st.Component("web"); !proto.Equal(before, after) {
		t.Fatalf("a failed rollback changed the component:\nbefore %v\nafter  %v", before, after)
	}
}
