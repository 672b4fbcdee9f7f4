package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/testkit"
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
// as it does for placed instances (they are rolled), not wait until the on-demand instance
// idles out (odIdle, 5 minutes after the last request).
func TestOnDemandFollowsSpecChange(t *testing.T) {
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: &envExec{}})
	spec := func(greeting string) *statev1.ComponentSpec {
		return &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "hello.wasm"},
			Env: map[string]string{"GREETING": greeting}}
	}
	h.apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 0,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec("old"),
	}}}}, createDeployment("d1", "c1", h.artifact("unused")), activate("c1", "d1"))
	testkit.Eventually(t, 5*time.Second, func() error {
		if tg := h.dp.Router().Lookup("hello"); tg.OnDemand == nil {
			return fmt.Errorf("routing at zero: %+v", tg)
		}
		return nil
	})
	testkit.Eventually(t, 5*time.Second, func() error {
		if code, _, body := h.serveOnDemand(); code != 200 || body != "old" {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
	h.apply(&statev1.Command{Op: &statev1.Command_UpdateComponentSpec{UpdateComponentSpec: &statev1.UpdateComponentSpec{Name: "hello", Spec: spec("new")}}})
	if c, _ := h.store.ComponentByID("c1"); c.GetSpec().GetEnv()["GREETING"] != "new" {
		t.Fatalf("spec not changed: %v", c.GetSpec())
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, _, body := h.serveOnDemand()
		if code == 200 && body == "new" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("3s after the env change, the on-demand instance still answers %d %q (want the new env)", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// During a rollout (d2 active, its instances not yet running), the old version's
// instances keep serving. When one of them crashes and restarts, it must restart as what
// it is: d1's artifact with d1's manifest (env, module, image, limits), not with the
// component's current spec, which the activation of d2 already set to d2's manifest.
func TestOldVersionRestartsWithItsOwnManifest(t *testing.T) {
	ex := &recExec{}
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: ex})
	spec := func(greeting string) *statev1.ComponentSpec {
		return &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "hello.wasm"},
			Env: map[string]string{"GREETING": greeting}}
	}
	art := h.artifact("unused")
	h.apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec("one"), ManifestSpec: spec("one"),
	}}}})
	ready := func(id, greeting string) []*statev1.Command {
		return []*statev1.Command{
			{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
				Id: id, ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING}}}},
			{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
				Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: art, Spec: spec(greeting), Activate: true}}},
		}
	}
	h.apply(ready("d1", "one")...)
	h.place("p1", "d1", self, run, 1)
	h.waitObserved("p1", running)
	if g := ex.greeting("p1"); g != "one" {
		t.Fatalf("d1 started with GREETING=%q", g)
	}
	// Push: d2 becomes active; its placement (on another node) has not run yet.
	h.apply(registerNode("n2", "10.0.0.2:8080"))
	h.apply(ready("d2", "two")...)
	h.place("p2", "d2", "n2", run, 1)
	// d1's instance crashes during the rollout and is restarted.
	n := ex.starts()
	ex.crashIt(t, "p1")
	testkit.Eventually(t, 10*time.Second, func() error {
		if ex.starts() == n {
			return fmt.Errorf("p1 not restarted yet")
		}
		return nil
	})
	if dep, g := ex.deployment("p1"), ex.greeting("p1"); dep != "d1" || g != "one" {
		t.Fatalf("the old version's instance restarted as deployment %s with GREETING=%q, want d1 with its own manifest's GREETING=\"one\"", dep, g)
	}
}

// recExec records the spec each instance started with.
type recExec struct {
	mu    sync.Mutex
	specs map[string]v9rt.Spec
	inst  map[string]*envInstance
	n     int
}

func (e *recExec) Runtime() string { return "wasm" }
func (e *recExec) Start(_ context.Context, s v9rt.Spec) (v9rt.Instance, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.specs == nil {
		e.specs, e.inst = map[string]v9rt.Spec{}, map[string]*envInstance{}
	}
	e.n++
	e.specs[s.ID] = s
	in := &envInstance{id: s.ID, greeting: s.Env["GREETING"], done: make(chan struct{})}
	e.inst[s.ID] = in
	return in, nil
}
func (e *recExec) Stop(_ context.Context, id string) error { return nil }
func (e *recExec) starts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}
func (e *recExec) greeting(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.specs[id].Env["GREETING"]
}
func (e *recExec) deployment(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.specs[id].DeploymentID
}
func (e *recExec) crashIt(t *testing.T, id string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.inst[id]
	if in == nil {
		t.Fatalf("no instance %s", id)
	}
	delete(e.inst, id)
	close(in.done)
}
