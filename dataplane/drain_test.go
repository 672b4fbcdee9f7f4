package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/testkit"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
)

// slowExec's instances hold every request until release is closed; Stop records whether a
// request was still being served.
type slowExec struct {
	release  chan struct{}
	inFlight atomic.Int64
	mu       sync.Mutex
	stopped  []int64 // requests in flight at each Stop
}

func (e *slowExec) Runtime() string { return "wasm" }
func (e *slowExec) Start(_ context.Context, s v9rt.Spec) (v9rt.Instance, error) {
	return &slowInstance{e: e, id: s.ID, done: make(chan struct{})}, nil
}
func (e *slowExec) Stop(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = append(e.stopped, e.inFlight.Load())
	return nil
}
func (e *slowExec) stops() []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int64(nil), e.stopped...)
}

type slowInstance struct {
	e    *slowExec
	id   string
	done chan struct{}
}

func (s *slowInstance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.UserAgent() == "v9-readiness" {
		return
	}
	s.e.inFlight.Add(1)
	defer s.e.inFlight.Add(-1)
	<-s.e.release
	fmt.Fprint(w, "done")
}
func (s *slowInstance) ID() string            { return s.id }
func (s *slowInstance) Done() <-chan struct{} { return s.done }
func (s *slowInstance) Err() error            { return nil }

// A stopped instance (a rollout replacing it, a scale-down, a drain, a delete) drains its
// requests in flight for as long as the component's limits.timeout lets them run, not only
// drainWait: a deploy must not cut the long requests a component allows. Past the timeout
// it is stopped anyway. drainMin is shortened so that the test shows both in seconds.
func TestStopDrainsUpToTheComponentTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		release   bool // the request ends by itself, within the timeout
		wantStops int64
	}{
		{"request ends within the timeout", true, 0},
		{"request outlives the timeout", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &slowExec{release: make(chan struct{})}
			h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: ex})
			h.dp.rec.drainMin = 50 * time.Millisecond
			const timeout = 1500 * time.Millisecond
			c := createComponent("c1", "hello", false)
			c.GetCreateComponent().Component.Spec.TimeoutMs = uint32(timeout.Milliseconds())
			h.apply(c, createDeployment("d1", "c1", h.artifact("unused")), activate("c1", "d1"))
			h.place("p1", "d1", self, run, 1)
			h.waitObserved("p1", running)
			testkit.Eventually(t, 5*time.Second, func() error {
				if tg := h.dp.Router().Lookup("hello"); len(tg.Local) == 0 {
					return fmt.Errorf("not routed: %+v", tg)
				}
				return nil
			})
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.get()
			}()
			defer func() {
				if !tc.release {
					close(ex.release)
				}
				<-done
			}()
			testkit.Eventually(t, 5*time.Second, func() error {
				if ex.inFlight.Load() == 0 {
					return fmt.Errorf("request not in flight yet")
				}
				return nil
			})
			t0 := time.Now()
			h.place("p1", "d1", self, statev1.PlacementDesired_PLACEMENT_DESIRED_STOP, 2)
			if tc.release {
				// Well past drainMin and still within the timeout: not stopped yet.
				time.Sleep(timeout / 2)
				if s := ex.stops(); len(s) > 0 {
					t.Fatalf("stopped %s into the drain with %d request(s) in flight (drainMin %s, timeout %s)", time.Since(t0), s[0], h.dp.rec.drainMin, timeout)
				}
				close(ex.release)
			}
			testkit.Eventually(t, 10*time.Second, func() error {
				if len(ex.stops()) == 0 {
					return fmt.Errorf("not stopped yet")
				}
				return nil
			})
			if s := ex.stops(); s[0] != tc.wantStops {
				t.Fatalf("stopped with %d request(s) in flight, want %d", s[0], tc.wantStops)
			}
			if !tc.release && time.Since(t0) < timeout {
				t.Fatalf("stopped %s after the stop began, before the %s timeout", time.Since(t0), timeout)
			}
		})
	}
}

// A request that took an instance from the routing table before the instance was stopped
// (it waited at the proxy's gate meanwhile) is answered "no instance here" (503, marked so
// that a forwarding node tries another), never served by the stopped instance; the same
// placement started again serves.
func TestStaleHandlerOfAStoppedInstanceAnswersNoInstance(t *testing.T) {
	ex := &envExec{}
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: ex})
	h.dp.rec.drainMin = 0
	h.apply(createComponent("c1", "hello", false), createDeployment("d1", "c1", h.artifact("unused")), activate("c1", "d1"))
	h.place("p1", "d1", self, run, 1)
	h.waitObserved("p1", running)
	var stale http.Handler
	testkit.Eventually(t, 5*time.Second, func() error {
		if tg := h.dp.Router().Lookup("hello"); len(tg.Local) > 0 {
			stale = tg.Local[0]
			return nil
		}
		return fmt.Errorf("not routed yet")
	})
	h.place("p1", "d1", self, statev1.PlacementDesired_PLACEMENT_DESIRED_STOP, 2)
	h.waitObserved("p1", statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED)
	rec := httptest.NewRecorder()
	stale.ServeHTTP(rec, httptest.NewRequest("GET", "/hello/x", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("X-V9-No-Instance") == "" {
		t.Fatalf("a stopped instance's handler answered %d %q, want 503 marked no instance", rec.Code, rec.Body.String())
	}
	h.place("p1", "d1", self, run, 3)
	h.waitObserved("p1", running)
	testkit.Eventually(t, 5*time.Second, func() error {
		if code, body := h.get(); code != http.StatusOK {
			return fmt.Errorf("after a restart: %d %q", code, body)
		}
		return nil
	})
}
