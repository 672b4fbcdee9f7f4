package wasm

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v9rt "github.com/velocity9/v9/runtime"
)

// TestRunningBound: guests execute on at most MaxRunning goroutines (by default one fewer
// than the Go scheduler's Ps, shared by the process's executors): while every place is taken, a fresh or warm request waits,
// and past its deadline gets 504 saying so without running; once a place frees, both run.
func TestRunningBound(t *testing.T) {
	d1, d2 := runSlots(0), runSlots(0)
	if d1.size != max(1, runtime.GOMAXPROCS(0)-1) || d1 != d2 {
		t.Fatalf("default bound %d with GOMAXPROCS %d, shared: %v", d1.size, runtime.GOMAXPROCS(0), d1 == d2)
	}
	ex := newExecutor(t, Config{MaxRunning: 1})
	fresh := startSpec(t, ex, v9rt.Spec{
		ID:   "fresh",
		Dir:  rawArtifact(t, "tiny.wasm", tinyCGI("Content-Type: text/plain\n\ntiny\n")),
		Wasm: v9rt.WasmSpec{Module: "tiny.wasm"},
	})
	warm, _ := startWarm(t, ex, 0)
	wantStatus(t, getWarm(t, warm, "/"), http.StatusOK) // initialized: the next waits only to run

	if err := ex.run.enter(context.Background()); err != nil { // every place taken
		t.Fatal(err)
	}
	for name, h := range map[string]http.Handler{"fresh": fresh, "warm": warm} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		cancel()
		if rec.Code != http.StatusGatewayTimeout || !strings.Contains(rec.Body.String(), "component timed out") {
			t.Errorf("%s request with no place to run: %d %q", name, rec.Code, rec.Body.String())
		}
	}
	ex.run.leave()
	wantStatus(t, get(t, fresh, "", "/"), http.StatusOK)
	wantStatus(t, getWarm(t, warm, "/"), http.StatusOK)
	if ex.run.used != 0 || len(ex.run.waiters) != 0 {
		t.Fatalf("%d places still taken, %d waiters after the requests", ex.run.used, len(ex.run.waiters))
	}
}

// TestBoundNoHandOff: a freed place goes to whoever asks first, not to the longest waiter
// (who is only woken to ask again, and waits again, first in line, if it lost the place).
// With one P the waiter cannot run between the release and the next request, so a bound
// that handed the place over would make that request wait.
func TestBoundNoHandOff(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b := newBound(1)
	mustEnter(t, b)
	entered := make(chan error, 1)
	go func() { entered <- b.enter(context.Background()) }()
	waitWaiters(t, b, 1)
	b.leave()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.enter(ctx); err != nil {
		t.Fatalf("the freed place was kept for the waiter: %v", err)
	}
	waitWaiters(t, b, 1) // the waiter lost, and waits again
	b.leave()
	if err := <-entered; err != nil {
		t.Fatal(err)
	}
	b.leave()
	wantIdle(t, b)
}

// TestBoundCancel: a waiter whose wait ends leaves the queue; one woken just as its wait
// ends passes the wake-up on, so the next waiter does not wait for a free place.
func TestBoundCancel(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b := newBound(1)
	mustEnter(t, b)

	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() { gone <- b.enter(ctx) }()
	waitWaiters(t, b, 1)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	waitWaiters(t, b, 0)

	ctx, cancel = context.WithCancel(context.Background())
	go func() { gone <- b.enter(ctx) }()
	waitWaiters(t, b, 1)
	next := make(chan error, 1)
	go func() { next <- b.enter(context.Background()) }()
	waitWaiters(t, b, 2)
	b.leave() // wakes the first waiter...
	cancel()  // ...whose wait ends before it runs
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("woken, then cancelled: %v", err)
	}
	select {
	case err := <-next:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wake-up of a cancelled waiter was lost: the next waiter still waits")
	}
	b.leave()
	wantIdle(t, b)
}

// TestBoundStress: never more guests than places, and every wait ends, under concurrent
// entries, releases and cancellations.
func TestBoundStress(t *testing.T) {
	b := newBound(2)
	var inside, most atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration((g+i)%5)*20*time.Microsecond)
				if (g+i)%3 == 0 {
					cancel() // some waits end before they start
				}
				if b.enter(ctx) == nil {
					n := inside.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					runtime.Gosched()
					inside.Add(-1)
					b.leave()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m > 2 {
		t.Fatalf("%d guests inside a bound of 2", m)
	}
	wantIdle(t, b)
}

func mustEnter(t *testing.T, b *bound) {
	t.Helper()
	if err := b.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitWaiters waits until n goroutines wait in b.
func waitWaiters(t *testing.T, b *bound, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		b.mu.Lock()
		k := len(b.waiters)
		b.mu.Unlock()
		if k == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", k, n)
		}
	}
}

func wantIdle(t *testing.T, b *bound) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used != 0 || len(b.waiters) != 0 {
		t.Fatalf("%d places taken, %d waiters: want none", b.used, len(b.waiters))
	}
}

// startLoopModule is a WASI command whose start section (run while it is instantiated)
// loops forever; its _start does nothing.
func startLoopModule() []byte {
	return cat(wasmHeader,
		section(1, 0x01, 0x60, 0x00, 0x00), // type 0: [] -> []
		section(3, 0x02, 0x00, 0x00),       // functions 0 and 1, both of type 0
		section(5, 0x01, 0x00, 0x01),       // a memory of one page
		section(7, cat([]byte{0x01}, str("_start"), []byte{0x00, 0x01})...),
		section(8, 0x00), // start: function 0
		section(10, 0x02,
			0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0 end
			0x02, 0x00, 0x0b),
	)
}

// TestStartSectionRunsWithinBound: a module whose instantiation executes guest code (a
// start section) is instantiated within the bound on guests, not only its _start.
func TestStartSectionRunsWithinBound(t *testing.T) {
	if !hasStartSection(startLoopModule()) || hasStartSection(tinyCGI("Content-Type: text/plain\n\nx")) {
		t.Fatal("hasStartSection is wrong about the test modules")
	}
	var mu sync.Mutex
	var logs []string
	ex := newExecutor(t, Config{MaxRunning: 1})
	in := startSpec(t, ex, v9rt.Spec{
		ID:   "start-loop",
		Dir:  rawArtifact(t, "loop.wasm", startLoopModule()),
		Wasm: v9rt.WasmSpec{Module: "loop.wasm"},
		Log: func(_, line string) {
			mu.Lock()
			logs = append(logs, line)
			mu.Unlock()
		},
	})
	mustEnter(t, ex.run) // every place taken
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	rec := httptest.NewRecorder()
	in.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	cancel()
	ex.run.leave()
	mu.Lock()
	defer mu.Unlock()
	if rec.Code != http.StatusGatewayTimeout || !strings.Contains(strings.Join(logs, "\n"), "no place to run") {
		t.Fatalf("a start section with no place to run: %d %q; log %q", rec.Code, rec.Body.String(), logs)
	}
}

func FuzzHasStartSection(f *testing.F) {
	f.Add(tinyCGI("Content-Type: text/plain\n\nx"))
	f.Add(startLoopModule())
	f.Add(wasmHeader)
	f.Fuzz(func(t *testing.T, bin []byte) {
		has := hasStartSection(bin)
		// A start section added to a module that walks to its end is always seen.
		if !has && !hasStartSection(append(slices.Clip(bin), startSectionID, 0x01, 0x00)) {
			t.Fatal("an appended start section was missed")
		}
	})
}
