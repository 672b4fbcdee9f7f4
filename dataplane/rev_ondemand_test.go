package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
)

// envExec is an executor whose instances answer the value of GREETING they started with.
type envExec struct {
	mu      sync.Mutex
	running map[string]bool
}

func (e *envExec) Runtime() string { return "wasm" }
func (e *envExec) Start(_ context.Context, s v9rt.Spec) (v9rt.Instance, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running == nil {
		e.running = map[string]bool{}
	}
	e.running[s.ID] = true
	return &envInstance{id: s.ID, greeting: s.Env["GREETING"], done: make(chan struct{})}, nil
}
func (e *envExec) Stop(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.running, id)
	return nil
}

type envInstance struct {
	id, greeting string
	done         chan struct{}
}

func (f *envInstance) ServeHTTP(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, f.greeting) }
func (f *envInstance) ID() string                                       { return f.id }
func (f *envInstance) Done() <-chan struct{}                            { return f.done }
func (f *envInstance) Err() error                                       { return nil }

// A wasm component scaled to zero is served by an on-demand instance. `v9 env set` (a
// change of the spec's env, which moves spec_index) must reach the requests served after it,
// as it does for placed instances (they are rolled). The on-demand instance is keyed by
// deployment and secrets_index only, so it keeps serving the old environment for as long
// as requests keep it from idling (odIdle, 5 minutes after the last request).
func TestRevOnDemandFollowsEnvChange(t *testing.T) {
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: &envExec{}})
	spec := func(greeting string) *statev1.ComponentSpec {
		return &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "hello.wasm"},
			Env: map[string]string{"GREETING": greeting}}
	}
	h.apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 0,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec("old"),
	}}}}, createDeployment("d1", "c1", h.artifact("unused")), activate("c1", "d1"))
	waitFor(t, 5*time.Second, func() error {
		if tg := h.dp.Router().Lookup("hello"); tg.OnDemand == nil {
			return fmt.Errorf("routing at zero: %+v", tg)
		}
		return nil
	})
	waitFor(t, 5*time.Second, func() error {
		if code, _, body := h.serveOnDemand(); code != 200 || body != "old" {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
	h.apply(&statev1.Command{Op: &statev1.Command_UpdateComponentSpec{UpdateComponentSpec: &statev1.UpdateComponentSpec{Name: "hello", Spec: spec("new")}}})
	if c, _ := h.store.ComponentByID("c1"); c.GetSpec().GetEnv()["GREETING"] != "new" {
		t.Fatalf("spec not changed: %v", c.GetSpec())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, body := h.serveOnDemand()
		if code == 200 && body == "new" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the env change, the on-demand instance still answers %d %q (want the new env)", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
