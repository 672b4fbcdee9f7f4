package dataplane

import (
	"context"
	"fmt"
	"net/http"
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

// A component may allow its requests up to limits.timeout (at most 15m), but an instance
// that is stopped (a rollout replacing it, a scale-down, a drain, a delete) waits only
// drainWait (30s) for its requests in flight and is then stopped under them: every deploy
// cuts a component's long requests that its own timeout allows. The drain should last up to
// the component's timeout (as Cloud Run's and Knative's do).
func TestRevStopWaitsForRequestsUpToTheComponentTimeout(t *testing.T) {
	ex := &slowExec{release: make(chan struct{})}
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: ex})
	c := createComponent("c1", "hello", false)
	c.GetCreateComponent().Component.Spec.TimeoutMs = uint32((2 * time.Minute).Milliseconds())
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
		h.get() // a request of the kind limits.timeout = 2m allows
	}()
	testkit.Eventually(t, 5*time.Second, func() error {
		if ex.inFlight.Load() == 0 {
			return fmt.Errorf("request not in flight yet")
		}
		return nil
	})
	h.place("p1", "d1", self, statev1.PlacementDesired_PLACEMENT_DESIRED_STOP, 2) // a rollout or scale-down stops it
	deadline := time.Now().Add(drainWait + 5*time.Second)
	for time.Now().Before(deadline) {
		if s := ex.stops(); len(s) > 0 && s[0] > 0 {
			close(ex.release)
			<-done
			t.Fatalf("the instance was stopped with %d request(s) in flight, %s into a 2m timeout", s[0], drainWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(ex.release)
	<-done
}
