package wasm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	v9rt "github.com/velocity9/v9/runtime"
)

// TestRunningBound: guests execute on at most MaxRunning goroutines (by default one fewer
// than the Go scheduler's Ps, shared by the process's executors): while every place is taken, a fresh or warm request waits,
// and past its deadline gets 504 saying so without running; once a place frees, both run.
func TestRunningBound(t *testing.T) {
	d1, d2 := runSlots(0), runSlots(0)
	if cap(d1) != max(1, runtime.GOMAXPROCS(0)-1) || d1 != d2 {
		t.Fatalf("default bound %d with GOMAXPROCS %d, shared: %v", cap(d1), runtime.GOMAXPROCS(0), d1 == d2)
	}
	ex := newExecutor(t, Config{MaxRunning: 1})
	fresh := startSpec(t, ex, v9rt.Spec{
		ID:   "fresh",
		Dir:  rawArtifact(t, "tiny.wasm", tinyCGI("Content-Type: text/plain\n\ntiny\n")),
		Wasm: v9rt.WasmSpec{Module: "tiny.wasm"},
	})
	warm, _ := startWarm(t, ex, 0)
	wantStatus(t, getWarm(t, warm, "/"), http.StatusOK) // initialized: the next waits only to run

	ex.run <- struct{}{} // every place taken
	for name, h := range map[string]http.Handler{"fresh": fresh, "warm": warm} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		cancel()
		if rec.Code != http.StatusGatewayTimeout || !strings.Contains(rec.Body.String(), "component timed out") {
			t.Errorf("%s request with no place to run: %d %q", name, rec.Code, rec.Body.String())
		}
	}
	<-ex.run
	wantStatus(t, get(t, fresh, "", "/"), http.StatusOK)
	wantStatus(t, getWarm(t, warm, "/"), http.StatusOK)
	if len(ex.run) != 0 {
		t.Fatalf("%d places still taken after the requests", len(ex.run))
	}
}
