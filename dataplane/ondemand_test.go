package dataplane

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/testkit"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
)

// containerAtZero creates a container component "hello" (c1) with scale.min min, no
// replicas and a ready, active deployment d1.
func (h *harness) containerAtZero(min uint32) {
	h.t.Helper()
	h.apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_CONTAINER,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
		Spec:    &statev1.ComponentSpec{ScaleMin: min, ScaleMax: 2, Container: &statev1.ContainerSpec{Image: "v9.local/x:1"}},
	}}}}, createDeployment("d1", "c1", h.artifact("unused")), activate("c1", "d1"))
}

// serveOnDemand sends one request to the component's on-demand handler, as the proxy does
// at zero, and returns the status, Retry-After and body.
func (h *harness) serveOnDemand() (int, string, string) {
	h.t.Helper()
	tg := h.dp.Router().Lookup("hello")
	if tg.OnDemand == nil {
		h.t.Fatalf("no on-demand handler: %+v", tg)
	}
	rec := httptest.NewRecorder()
	tg.OnDemand.ServeHTTP(rec, httptest.NewRequest("GET", "/hello/x", nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Header().Get("Retry-After"), string(b)
}

// A container component that may scale to zero is served on demand on a node that runs
// containers: a request is held while the instance starts, for at most the cold-start wait
// (then 503, Retry-After and the reason), and served once it runs; a failed start is a 503
// that says so. A container component with scale.min 1 gets no on-demand instance.
func TestOnDemandContainerHeldFromZero(t *testing.T) {
	ex := newFakeExec()
	ex.block = make(chan struct{})
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_CONTAINER: ex}, func(_ *harness, c *Config) {
		c.ColdStartWait = 200 * time.Millisecond
	})
	h.containerAtZero(0)
	testkit.Eventually(t, 5*time.Second, func() error {
		if tg := h.dp.Router().Lookup("hello"); tg.OnDemand == nil || tg.InProcess {
			return fmt.Errorf("routing at zero: %+v", tg)
		}
		return nil
	})
	// The start takes longer than the wait: a clear 503, and the start goes on.
	code, retry, body := h.serveOnDemand()
	if code != 503 || retry != "1" || !strings.Contains(body, "not ready within 200ms") {
		t.Fatalf("held past the cold-start wait: %d %q %q", code, retry, body)
	}
	close(ex.block)
	testkit.Eventually(t, 5*time.Second, func() error {
		if code, _, body := h.serveOnDemand(); code != 200 || body != "fake d1" {
			return fmt.Errorf("once started: %d %q", code, body)
		}
		return nil
	})
	if n := len(ex.startTimes()); n != 1 {
		t.Fatalf("%d starts, want 1 (held requests share one start)", n)
	}

	// Once a placement of the deployment runs (the autoscaler brought one back), the
	// container started on demand stops after a short idle time, not the usual one.
	h.apply(registerNode("n2", "10.0.0.2:8080"))
	h.place("p2", "d1", "n2", run, 1)
	h.dp.od.sweep(time.Now().Add(odIdleReplaced + time.Second))
	if !ex.isRunning("ondemand-d1") {
		t.Fatal("on-demand container stopped while its deployment is not running placed yet")
	}
	h.apply(setObserved("p2", running))
	h.dp.od.sweep(time.Now().Add(odIdleReplaced + time.Second))
	if ex.isRunning("ondemand-d1") {
		t.Fatal("on-demand container still runs, idle, beside a running placement")
	}
	h.apply(deletePlacements("p2"))

	// A start that fails answers 503 with the reason, and is not retried per request.
	ex.mu.Lock()
	ex.failDeploy = "d2"
	ex.mu.Unlock()
	h.apply(createDeployment("d2", "c1", h.artifact("unused")), activate("c1", "d2"))
	// d2 served once (its readiness probe ran elsewhere), so it comes before d1.
	h.place("p3", "d2", "n2", run, 1)
	h.apply(setObserved("p3", running), deletePlacements("p3"))
	testkit.Eventually(t, 5*time.Second, func() error {
		if c := h.dp.router.onDemand("hello"); c == nil || c.candidates[0] != "d2" {
			return fmt.Errorf("candidates %+v", c)
		}
		return nil
	})
	code, retry, body = h.serveOnDemand()
	if code != 503 || retry != "5" || !strings.Contains(body, "starting one here failed") {
		t.Fatalf("failed start: %d %q %q", code, retry, body)
	}
	if code, _, _ := h.serveOnDemand(); code != 503 || len(ex.startTimes()) != 2 {
		t.Fatalf("a failed start was retried at once: %d, %d starts", code, len(ex.startTimes()))
	}

	// scale.min 1: the container must run placed; no on-demand instance.
	h.apply(&statev1.Command{Op: &statev1.Command_UpdateComponentSpec{UpdateComponentSpec: &statev1.UpdateComponentSpec{Name: "hello",
		Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 2, Container: &statev1.ContainerSpec{Image: "v9.local/x:1"}}}}})
	testkit.Eventually(t, 5*time.Second, func() error {
		if tg := h.dp.Router().Lookup("hello"); tg.OnDemand != nil {
			return fmt.Errorf("on demand for scale.min 1: %+v", tg)
		}
		return nil
	})
}
