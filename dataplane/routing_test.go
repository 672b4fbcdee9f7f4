package dataplane

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/testkit"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/wasm"
)

// A placement on this node serves through the routing snapshot with the real wasm
// executor; other nodes' running instances appear as remote targets; a paused component
// routes nowhere.
func TestRoutingSnapshotWithWasm(t *testing.T) {
	w, err := wasm.New(wasm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: w})
	h.component(false, "hello from wasm\n")
	h.apply(registerNode("n2", "10.0.0.2:8080"), registerNode("n3", "10.0.0.3:8080"))
	h.place("p1", "d1", self, run, 1)
	h.place("p2", "d1", "n2", run, 1)
	h.place("p3", "d1", "n3", run, 1)
	h.apply(setObserved("p2", running))
	h.waitObserved("p1", running)
	testkit.Eventually(t, 5*time.Second, func() error {
		tg := h.dp.Router().Lookup("hello")
		if !tg.Found || len(tg.Local) != 1 || !tg.InProcess || !slices.Equal(tg.Remote, []string{"10.0.0.2:8080"}) {
			return fmt.Errorf("target %+v", tg)
		}
		return nil
	})
	if code, body := h.get(); code != 200 || body != "hello from wasm\n" {
		t.Fatalf("request through the snapshot: %d %q", code, body)
	}
	if tg := h.dp.Router().Lookup("nope"); tg.Found {
		t.Fatalf("unknown component found: %+v", tg)
	}

	h.apply(&statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{
		Name: "hello", Desired: statev1.DesiredState_DESIRED_STATE_PAUSED,
	}}})
	testkit.Eventually(t, 5*time.Second, func() error {
		if tg := h.dp.Router().Lookup("hello"); !tg.Paused || len(tg.Local) != 0 {
			return fmt.Errorf("paused target %+v", tg)
		}
		return nil
	})
}

// The proxy's lookup neither locks nor copies: it allocates nothing.
func TestLookupAllocatesNothing(t *testing.T) {
	h, _ := fakeHarness(t)
	h.component(false, "v1")
	h.place("p1", "d1", self, run, 1)
	h.waitObserved("p1", running)
	testkit.Eventually(t, 5*time.Second, func() error {
		if tg := h.dp.Router().Lookup("hello"); len(tg.Local) != 1 {
			return fmt.Errorf("target %+v", tg)
		}
		return nil
	})
	r := h.dp.Router()
	if a := testing.AllocsPerRun(1000, func() { r.Lookup("hello") }); a != 0 {
		t.Fatalf("Lookup allocates %.1f times per call", a)
	}
}

// With no instance anywhere, a wasm component is served on demand from its active
// deployment; while that one cannot start (a broken rollout), from the older ready
// deployment still placed; the sweep stops on-demand instances of deployments gone.
func TestOnDemandFallsBackToPlacedDeployment(t *testing.T) {
	h, ex := fakeHarness(t)
	h.component(false, "v1")
	testkit.Eventually(t, 5*time.Second, func() error {
		if code, body := h.get(); code != 200 || body != "fake d1" {
			return fmt.Errorf("on demand at zero replicas: %d %q", code, body)
		}
		return nil
	})

	ex.mu.Lock()
	ex.failDeploy = "d2"
	ex.mu.Unlock()
	h.apply(registerNode("n2", "10.0.0.2:8080"))
	h.place("p2", "d1", "n2", run, 1) // the old version, still placed (not running yet)
	h.deployment("d2", "v2")
	h.apply(activate("c1", "d2"))
	h.waitCandidates("d2", "d1")
	if code, body := h.get(); code != 200 || body != "fake d1" {
		t.Fatalf("on demand during a broken rollout: %d %q", code, body)
	}

	// Once the old version is neither active nor placed, its on-demand instance is stopped.
	if !ex.isRunning("ondemand-d1") {
		t.Fatal("no on-demand instance of d1")
	}
	h.apply(deletePlacements("p2"))
	testkit.Eventually(t, 10*time.Second, func() error {
		if ex.isRunning("ondemand-d1") {
			return fmt.Errorf("on-demand instance of d1 still runs")
		}
		return nil
	})
}

// A container component at zero, reached through a node that runs no containers, is
// forwarded to the one node that starts it on demand, the same whichever node it enters by,
// instead of a 503; a draining node starts none, and once an instance runs, requests go
// to it.
func TestContainerAtZeroRelaysToANodeThatRunsContainers(t *testing.T) {
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: &envExec{}})
	node := func(id, addr string, runtimes ...statev1.Runtime) *statev1.Command {
		return &statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
			Id: id, ApiAddr: id + ":7900", RaftAddr: id + ":7901", ProxyAddr: addr, Runtimes: runtimes,
		}}}}
	}
	h.apply(node("n2", "10.0.0.2:8080", statev1.Runtime_RUNTIME_WASM),
		node("n3", "10.0.0.3:8080", statev1.Runtime_RUNTIME_WASM, statev1.Runtime_RUNTIME_CONTAINER),
		node("n4", "10.0.0.4:8080", statev1.Runtime_RUNTIME_WASM, statev1.Runtime_RUNTIME_CONTAINER))
	c := createComponent("c1", "box", false)
	cc := c.GetCreateComponent().Component
	cc.Runtime, cc.Replicas = statev1.Runtime_RUNTIME_CONTAINER, 0
	cc.Spec = &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 3, Container: &statev1.ContainerSpec{Image: "example/box"}}
	h.apply(c, createDeployment("d1", "c1", h.artifact("unused")), activate("c1", "d1"))
	want := relayTo([]*statev1.Node{{Id: "n3", ProxyAddr: "10.0.0.3:8080"}, {Id: "n4", ProxyAddr: "10.0.0.4:8080"}}, "c1")
	remote := func(want string) {
		t.Helper()
		testkit.Eventually(t, 5*time.Second, func() error {
			tg := h.dp.Router().Lookup("box")
			if tg.OnDemand != nil || len(tg.Remote) != 1 || tg.Remote[0] != want {
				return fmt.Errorf("target %+v, want only remote %s", tg, want)
			}
			return nil
		})
	}
	remote(want)
	// The choice is the nodes', not the order they registered in.
	if other := relayTo([]*statev1.Node{{Id: "n4", ProxyAddr: "10.0.0.4:8080"}, {Id: "n3", ProxyAddr: "10.0.0.3:8080"}}, "c1"); other != want {
		t.Fatalf("relayTo depends on the nodes' order: %s, then %s", want, other)
	}
	// The chosen node drains: the other one starts it.
	chosen, rest := "n3", "10.0.0.4:8080"
	if want == "10.0.0.4:8080" {
		chosen, rest = "n4", "10.0.0.3:8080"
	}
	h.apply(&statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{Id: chosen, Status: statev1.NodeStatus_NODE_STATUS_DRAINING}}})
	remote(rest)
	// An instance runs on n2 (placed there by hand): it takes the requests.
	h.place("p2", "d1", "n2", run, 1)
	h.apply(setObserved("p2", running))
	remote("10.0.0.2:8080")
}

// A version superseded during its canary (d2, never proved) takes none of the traffic the
// next canary (d3) leaves to the older versions while a proved one (d1) still runs.
func TestSupersededCanaryServesOnlyWithoutAProvedVersion(t *testing.T) {
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: &recExec{}})
	spec := func(greeting string) *statev1.ComponentSpec {
		return &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "hello.wasm"},
			Env: map[string]string{"GREETING": greeting}, Rollout: &statev1.RolloutSpec{CanaryPercent: 10}}
	}
	art := h.artifact("unused")
	h.apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec("one"), ManifestSpec: spec("one"),
	}}}})
	deploy := func(id, greeting, placement string, epoch uint64) {
		h.apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
			Id: id, ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING}}}},
			&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
				Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: art, Spec: spec(greeting), Activate: true}}})
		h.place(placement, id, self, run, epoch)
		h.waitObserved(placement, running)
	}
	answers := func(hs []http.Handler) (out []string) {
		for _, hd := range hs {
			rec := httptest.NewRecorder()
			hd.ServeHTTP(rec, httptest.NewRequest("GET", "/hello/x", nil))
			out = append(out, rec.Body.String())
		}
		slices.Sort(out)
		return out
	}
	deploy("d1", "one", "p1", 1)
	deploy("d2", "two", "p2", 2) // in its canary beside d1
	deploy("d3", "three", "p3", 3)
	if d, _ := h.store.Deployment("d2"); !d.CanarySuperseded {
		t.Fatalf("d2 not marked superseded: %v", d)
	}
	testkit.Eventually(t, 5*time.Second, func() error {
		tg := h.dp.Router().Lookup("hello")
		if tg.Canary == nil {
			return fmt.Errorf("d3 not in its canary: %+v", tg)
		}
		if got := answers(tg.Local); !slices.Equal(got, []string{"one"}) {
			return fmt.Errorf("the older versions' share goes to %q, want d1's only", got)
		}
		if got := answers(tg.Canary.Local); !slices.Equal(got, []string{"three"}) {
			return fmt.Errorf("the canary's share goes to %q", got)
		}
		return nil
	})
	// d1 stops: the superseded d2 is all that is left of the older versions, and serves.
	h.place("p1", "d1", self, statev1.PlacementDesired_PLACEMENT_DESIRED_STOP, 4)
	testkit.Eventually(t, 5*time.Second, func() error {
		tg := h.dp.Router().Lookup("hello")
		if tg.Canary == nil || !slices.Equal(answers(tg.Local), []string{"two"}) {
			return fmt.Errorf("after d1 stopped: %+v", tg)
		}
		return nil
	})
}
