package server

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/fsm"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// raceBackend applies a write and, before the handler can read anything back, lets a
// concurrent delete land: its replica no longer holds the component.
type raceBackend struct {
	ComponentBackend
	store *fsm.Store
}

func (b *raceBackend) ApplyResult(_ context.Context, cmd *statev1.Command) (*fsm.Result, error) {
	c := cmd.GetCreateComponent().GetComponent()
	created := &statev1.Component{Id: "c1", Name: c.GetName(), Spec: c.GetSpec(), CreateIndex: 7, ModifyIndex: 7}
	// The delete at 8 is applied before the handler looks.
	_ = b.store.Apply(8, &statev1.Command{IgnoreIfUnknown: true})
	return &fsm.Result{Index: 7, Component: created}, nil
}

func (b *raceBackend) Store() *fsm.Store { return b.store }

// TestCreateAnswersFromTheWrite: a create that was applied is answered with the component
// it created, even when a delete landed before the handler could read it back (a read-back
// answered NotFound).
func TestCreateAnswersFromTheWrite(t *testing.T) {
	s := &Components{B: &raceBackend{store: fsm.NewStore()}}
	resp, err := s.Create(t.Context(), connect.NewRequest(&componentv1.CreateRequest{
		Name: "web", Runtime: statev1.Runtime_RUNTIME_WASM,
		Spec: &statev1.ComponentSpec{ScaleMax: 1, Env: map[string]string{"V": "1"}},
	}))
	if err != nil {
		t.Fatalf("create = %v, want the created component", err)
	}
	if c := resp.Msg.Component; c.GetName() != "web" || c.GetSpec().GetEnv()["V"] != "1" || resp.Msg.Index != 7 {
		t.Fatalf("create answered %v at %d, want web with V=1 at 7", c, resp.Msg.Index)
	}
}
