package wasm

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/runtimetest"
)

// startWarm starts hello-http with a pool of one instance, so that tests know which serves.
func startWarm(t *testing.T, ex *Executor, reuse int) (*instance, *runtimetest.Logs) {
	t.Helper()
	in, sink := startGuest(t, ex, "hellohttp", func(s *runtime.Spec) {
		s.Wasm.ABI = ABIHTTP
		s.Wasm.Reuse = reuse
		s.Concurrency = 1
		s.Env = map[string]string{"GREETING": "warm"}
	})
	return in.(*instance), sink
}

func getWarm(t *testing.T, in *instance, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	w := httptest.NewRecorder()
	in.ServeHTTP(w, req)
	return w
}

// An ordinary http.Handler served warm: the same instance answers request after request,
// keeping its state, with the manifest's env, the request's path and its stderr in the log.
func TestWarmServesHandler(t *testing.T) {
	in, sink := startWarm(t, sharedExecutor(t), 0)
	for i := 1; i <= 3; i++ {
		w := getWarm(t, in, "/hello/x?do=log")
		body, _ := io.ReadAll(w.Result().Body)
		if w.Code != 200 || string(body) != "hello from wasm warm /hello/x\n" {
			t.Fatalf("request %d: %d %q", i, w.Code, body)
		}
		if got := w.Header().Get("X-Served"); got != strconv.Itoa(i) {
			t.Fatalf("request %d: served %s by this instance, want %d (not reused?)", i, got, i)
		}
	}
	sink.WantContains(t, "stderr: hello-http: log line")
}

// A trap (the handler panics) discards the instance; the next request gets a new one.
func TestWarmTrapDiscards(t *testing.T) {
	in, _ := startWarm(t, sharedExecutor(t), 0)
	if w := getWarm(t, in, "/x"); w.Code != 200 || w.Header().Get("X-Served") != "1" {
		t.Fatalf("first: %d %s", w.Code, w.Header().Get("X-Served"))
	}
	if w := getWarm(t, in, "/x?do=trap"); w.Code != http.StatusInternalServerError {
		t.Fatalf("trap: %d, want 500", w.Code)
	}
	w := getWarm(t, in, "/x")
	if w.Code != 200 || w.Header().Get("X-Served") != "1" {
		t.Fatalf("after the trap: %d, served %q; want 200 from a fresh instance (1)", w.Code, w.Header().Get("X-Served"))
	}
}

// With reuse = 1 no state survives from one request to the next, as with WAGI.
func TestWarmReuseOneIsolates(t *testing.T) {
	in, _ := startWarm(t, sharedExecutor(t), 1)
	for i := 0; i < 3; i++ {
		if w := getWarm(t, in, "/x"); w.Code != 200 || w.Header().Get("X-Served") != "1" {
			t.Fatalf("request %d: %d, served %q, want 1", i, w.Code, w.Header().Get("X-Served"))
		}
	}
}

// An idle pool shrinks to zero; the next request waits for one initialization and succeeds.
func TestWarmShrinksToZero(t *testing.T) {
	ex := newExecutor(t, Config{WarmIdle: 50 * time.Millisecond})
	in, _ := startWarm(t, ex, 0)
	if w := getWarm(t, in, "/x"); w.Code != 200 {
		t.Fatalf("first: %d", w.Code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for in.warm.size() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pool still holds %d instances", in.warm.size())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if w := getWarm(t, in, "/x"); w.Code != 200 || !strings.Contains(w.Body.String(), "hello from wasm") {
		t.Fatalf("at zero: %d %q", w.Code, w.Body.String())
	}
}

// A WAGI command started with the "http" ABI, or a reactor without it, is a bad artifact.
func TestWarmABIMismatch(t *testing.T) {
	ex := sharedExecutor(t)
	for _, tc := range []struct{ guest, abi string }{{"hello", ABIHTTP}, {"hellohttp", ""}} {
		_, err := ex.Start(t.Context(), runtime.Spec{
			ID: t.Name() + tc.guest, Dir: artifact(t, tc.guest, nil), Digest: guestDigests[tc.guest],
			Wasm: runtime.WasmSpec{Module: tc.guest + ".wasm", ABI: tc.abi},
		})
		if err == nil {
			t.Errorf("%s with abi %q started", tc.guest, tc.abi)
		}
	}
}

// A warm guest still computing when its timeout passes is stopped (504), with wazero's own
// check off (the module checks its interrupt flag), and discarded: the next request is
// served by a new instance.
func TestWarmTimeoutInterrupts(t *testing.T) {
	inst, _ := startGuest(t, sharedExecutor(t), "hellohttp", func(s *runtime.Spec) {
		s.Wasm.ABI = ABIHTTP
		s.Concurrency = 1
		s.Timeout = 500 * time.Millisecond
	})
	in := inst.(*instance)
	if !in.mod.interrupt {
		t.Fatal("hello-http was not made interruptible: wazero checks at every branch")
	}
	if w := getWarm(t, in, "/x"); w.Code != 200 || w.Header().Get("X-Served") != "1" {
		t.Fatalf("first: %d %s", w.Code, w.Header().Get("X-Served"))
	}
	t0 := time.Now()
	if w := getWarm(t, in, "/x?do=spin"); w.Code != http.StatusGatewayTimeout {
		t.Fatalf("spin: %d %q, want 504", w.Code, w.Body.String())
	}
	if d := time.Since(t0); d > 20*time.Second {
		t.Fatalf("spin stopped after %s", d)
	}
	w := getWarm(t, in, "/x")
	if w.Code != 200 || w.Header().Get("X-Served") != "1" {
		t.Fatalf("after the timeout: %d, served %q; want 200 from a fresh instance (1)", w.Code, w.Header().Get("X-Served"))
	}
}

// A request takes a place to run before an instance: with the one place held elsewhere, 16
// waiting requests hold no instance (the pool allows 16), and once the place is free they are
// all served by the few instances that exist.
func TestWarmWaitHoldsNoInstance(t *testing.T) {
	ex := newExecutor(t, Config{MaxRunning: 1})
	inst, _ := startGuest(t, ex, "hellohttp", func(s *runtime.Spec) {
		s.Wasm.ABI = ABIHTTP
		s.Concurrency = 16
	})
	in := inst.(*instance)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
		}
	}
	waitFor("the first instance initialized", func() bool { return len(in.warm.ready) == 1 })
	if err := ex.run.enter(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make(chan int, 16)
	for range 16 {
		wg.Go(func() {
			w := httptest.NewRecorder()
			in.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
			codes <- w.Code
		})
	}
	waitFor("16 requests waiting for a place", func() bool {
		ex.run.mu.Lock()
		defer ex.run.mu.Unlock()
		return len(ex.run.waiters) >= 16
	})
	if n := in.warm.size(); n > 2 {
		t.Errorf("%d instances held by requests waiting for a place to run; want at most 2", n)
	}
	ex.run.leave()
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	if n := in.warm.size(); n > 8 {
		t.Errorf("%d instances served 16 requests one at a time; want at most 8", n)
	}
}

// The pool hands out the instance put back last.
func TestWarmPoolLastInFirstOut(t *testing.T) {
	p := newWarmPool(nil, 3, 0)
	a, b, c := &warmInst{}, &warmInst{}, &warmInst{}
	for _, w := range []*warmInst{a, b, c} {
		p.slots <- struct{}{}
		p.put(w)
	}
	for _, want := range []*warmInst{c, b} {
		if w, ok := p.tryGet(); !ok || w != want {
			t.Fatalf("got %p, want %p", w, want)
		}
	}
	p.put(b)
	if w, err := p.get(t.Context()); err != nil || w != b {
		t.Fatalf("got %p %v, want %p", w, err, b)
	}
}

// A module built with a guest package older than v9_http_serve2 (it exports v9_http_serve)
// still serves, warm, and gets the request head as HTTP/1.1 text: the headers v9 forwards,
// the client's address, the body's length or chunked framing, then the body.
func TestWarmFirstABIVersion(t *testing.T) {
	in, _ := startGuest(t, sharedExecutor(t), "httpv1", func(s *runtime.Spec) {
		s.Wasm.ABI = ABIHTTP
		s.Concurrency = 1
	})
	for i, c := range []struct {
		length int64
		want   string
	}{
		{5, "Content-Length: 5\r\n\r\nhello"},
		{-1, "Transfer-Encoding: chunked\r\n\r\nhello"},
	} {
		req := httptest.NewRequest(http.MethodPost, "http://example.com/v/x?q=1", strings.NewReader("hello"))
		req.ContentLength = c.length
		req.Header.Set("X-Test", "yes")
		req.Header.Set("X-V9-Internal", "no")
		req.Header.Set("V9-Remote-Addr", "6.6.6.6:1") // a client's claim is not passed on
		w := httptest.NewRecorder()
		in.ServeHTTP(w, req)
		got := w.Body.String()
		if w.Code != 200 || !strings.HasPrefix(got, "POST /v/x?q=1 HTTP/1.1\r\nHost: example.com\r\n") ||
			!strings.Contains(got, "\r\nX-Test: yes\r\n") || !strings.Contains(got, "\r\nV9-Remote-Addr: 192.0.2.1:1234\r\n") ||
			strings.Contains(got, "V9-Internal") || strings.Contains(got, "6.6.6.6") || !strings.HasSuffix(got, c.want) {
			t.Fatalf("request %d: %d %q", i, w.Code, got)
		}
	}
}
