package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/runtimetest"
)

func TestHello(t *testing.T) {
	t.Parallel()
	ex := sharedExecutor(t)
	in, _ := startGuest(t, ex, "hello", func(s *runtime.Spec) { s.Env = map[string]string{"GREETING": "hi"} })
	if in.ID() == "" || ex.Runtime() != "wasm" {
		t.Fatalf("id %q runtime %q", in.ID(), ex.Runtime())
	}

	rec := get(t, in, "/hello", "/hello/world")
	wantStatus(t, rec, http.StatusOK)
	if got, want := rec.Body.String(), "hello from wasm hi /world\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type %q", ct)
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("Content-Length %q for %d bytes", cl, rec.Body.Len())
	}

	// Routed by Host: no script name, the whole path is PATH_INFO.
	rec = get(t, in, "", "/a/b")
	wantStatus(t, rec, http.StatusOK)
	if got, want := rec.Body.String(), "hello from wasm hi /a/b\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}

func TestHandAssembledGuest(t *testing.T) {
	t.Parallel()
	in := startSpec(t, sharedExecutor(t), runtime.Spec{
		ID:   t.Name(),
		Dir:  rawArtifact(t, "tiny.wasm", tinyCGI("Content-Type: text/plain\n\nhello from a tiny guest\n")),
		Wasm: runtime.WasmSpec{Module: "tiny.wasm"},
	})
	rec := get(t, in, "", "/")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.String() != "hello from a tiny guest\n" {
		t.Errorf("body %q", rec.Body.String())
	}
}

func TestStatusLocationAndCRLF(t *testing.T) {
	t.Parallel()
	in, _ := startGuest(t, sharedExecutor(t), "cgi", nil)

	rec := get(t, in, "/cgi", "/cgi/status")
	wantStatus(t, rec, http.StatusNotFound)
	if rec.Body.String() != "nothing here\n" {
		t.Errorf("body %q", rec.Body.String())
	}

	rec = get(t, in, "/cgi", "/cgi/redirect")
	wantStatus(t, rec, http.StatusFound)
	if loc := rec.Header().Get("Location"); loc != "/elsewhere" {
		t.Errorf("Location %q", loc)
	}

	rec = get(t, in, "/cgi", "/cgi/crlf")
	wantStatus(t, rec, http.StatusOK)
	if rec.Header().Get("X-Test") != "yes" || rec.Body.String() != "crlf body" {
		t.Errorf("headers %v body %q", rec.Header(), rec.Body.String())
	}
}

func TestCGIEnvironment(t *testing.T) {
	t.Parallel()
	in, _ := startGuest(t, sharedExecutor(t), "cgi", func(s *runtime.Spec) {
		s.Env = map[string]string{"FOO": "bar", "PATH_INFO": "from the manifest, overridden"}
	})

	rec := do(t, in, http.MethodGet, "/cgi/env?a=1&b=two%20words", nil, map[string]string{
		ScriptNameHeader: "/cgi",
		"User-Agent":     "v9-test",
		"X-Custom-Thing": "yes",
		"X-V9-Hop":       "internal",
		"Under_Score":    "spoof",
	})
	wantStatus(t, rec, http.StatusOK)
	env := map[string]string{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	want := map[string]string{
		"REQUEST_METHOD":        "GET",
		"SCRIPT_NAME":           "/cgi",
		"PATH_INFO":             "/env",
		"PATH_TRANSLATED":       "/env",
		"QUERY_STRING":          "a=1&b=two%20words",
		"SERVER_NAME":           "example.com",
		"SERVER_PORT":           "80",
		"SERVER_PROTOCOL":       "HTTP/1.1",
		"SERVER_SOFTWARE":       "v9",
		"GATEWAY_INTERFACE":     "CGI/1.1",
		"REMOTE_ADDR":           "192.0.2.1",
		"CONTENT_LENGTH":        "0",
		"CONTENT_TYPE":          "",
		"HTTP_HOST":             "example.com",
		"HTTP_USER_AGENT":       "v9-test",
		"HTTP_X_CUSTOM_THING":   "yes",
		"X_FULL_URL":            "http://example.com/cgi/env?a=1&b=two%20words",
		"X_MATCHED_ROUTE":       "/cgi/...",
		"X_RAW_PATH_INFO":       "/env",
		"FOO":                   "bar",
		"ARGS":                  `["cgi.wasm"]`,
		"HTTP_X_V9_HOP":         "",
		"HTTP_UNDER_SCORE":      "",
		"HTTP_X_V9_SCRIPT_NAME": "",
	}
	for k, v := range want {
		if got := env[k]; got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if t.Failed() {
		t.Logf("environment:\n%s", rec.Body.String())
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	in, _ := startGuest(t, sharedExecutor(t), "echo", nil)
	for _, n := range []int{0, 5, 1 << 20} {
		body := bytes.Repeat([]byte("ping!"), n/5)
		rec := do(t, in, http.MethodPost, "/echo", body, map[string]string{"Content-Type": "text/x-ping"})
		wantStatus(t, rec, http.StatusOK)
		if !bytes.Equal(rec.Body.Bytes(), body) {
			t.Errorf("echo of %d bytes came back as %d bytes", len(body), rec.Body.Len())
		}
		if ct, cl := rec.Header().Get("Content-Type"), rec.Header().Get("X-Content-Length"); ct != "text/x-ping" || cl != strconv.Itoa(len(body)) {
			t.Errorf("Content-Type %q X-Content-Length %q", ct, cl)
		}
	}
}

func TestSizeLimits(t *testing.T) {
	t.Parallel()
	ex := newExecutor(t, Config{MaxRequestBytes: 1024, MaxResponseBytes: 4096})
	echo, _ := startGuest(t, ex, "echo", nil)
	srv := httptest.NewServer(echo)
	defer srv.Close()

	post := func(body io.Reader) int {
		t.Helper()
		resp, err := http.Post(srv.URL+"/", "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(bytes.NewReader(make([]byte, 1024))); code != http.StatusOK {
		t.Errorf("1024-byte body: status %d, want 200", code)
	}
	if code := post(bytes.NewReader(make([]byte, 1025))); code != http.StatusRequestEntityTooLarge {
		t.Errorf("1025-byte body: status %d, want 413", code)
	}
	// Chunked, so no Content-Length to refuse it early.
	if code := post(io.MultiReader(strings.NewReader("x"), bytes.NewReader(make([]byte, 4096)))); code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 4097-byte body: status %d, want 413", code)
	}

	cgi, logs := startGuest(t, ex, "cgi", nil)
	wantStatus(t, get(t, cgi, "", "/big?n=4000"), http.StatusOK)
	rec := get(t, cgi, "", "/big?n=5000")
	wantStatus(t, rec, http.StatusBadGateway)
	logs.WantContains(t, "response too large")
}

func TestInfiniteLoopTimesOut(t *testing.T) {
	t.Parallel()
	ex := newExecutor(t, Config{})
	loop, logs := startGuest(t, ex, "loop", func(s *runtime.Spec) { s.Timeout = 500 * time.Millisecond })
	hello, _ := startGuest(t, ex, "hello", nil)

	for range 2 {
		t0 := time.Now()
		rec := get(t, loop, "", "/")
		took := time.Since(t0)
		wantStatus(t, rec, http.StatusGatewayTimeout)
		if took < 500*time.Millisecond || took > 5*time.Second {
			t.Errorf("timed out after %s, want about 500ms", took)
		}
	}
	logs.WantContains(t, "v9: 504 component timed out: still running after 500ms")
	wantStatus(t, get(t, hello, "", "/"), http.StatusOK)

	// A guest asleep in the host (WASI poll_oneoff) is woken by the deadline too.
	sleepy, _ := startGuest(t, ex, "cgi", func(s *runtime.Spec) { s.Timeout = 500 * time.Millisecond })
	t0 := time.Now()
	wantStatus(t, get(t, sleepy, "", "/sleep"), http.StatusGatewayTimeout)
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("a sleeping guest timed out after %s, want about 500ms", took)
	}
}

func TestMemoryBomb(t *testing.T) {
	t.Parallel()
	ex := newExecutor(t, Config{})
	hello, _ := startGuest(t, ex, "hello", nil)
	bomb, logs := startGuest(t, ex, "membomb", func(s *runtime.Spec) { s.MemoryBytes = 16 << 20 })

	rec := get(t, bomb, "", "/")
	wantStatus(t, rec, http.StatusInternalServerError)
	logs.WantContains(t, "out of memory")
	logs.WantContains(t, "v9: 500 component failed: exited with code 2 without output")
	got := maxAllocated(logs.String())
	if got >= 16 || got < 8 {
		t.Errorf("16 MiB limit: the guest allocated %d MiB", got)
	}
	t.Logf("16 MiB limit: the guest allocated %d MiB before it ran out", got)
	wantStatus(t, get(t, hello, "", "/"), http.StatusOK)
}

func TestMemoryLimitPerComponent(t *testing.T) {
	t.Parallel()
	ex := sharedExecutor(t)
	// The same module under two limits lives in two runtimes, each enforcing its own.
	for limit, want := range map[uint64]int{
		16 << 20: http.StatusInternalServerError, // the grow fails: exit 1, no output
		32 << 20: http.StatusBadGateway,          // the grow works: exit 0, no output
	} {
		in := startSpec(t, ex, runtime.Spec{
			ID:          fmt.Sprintf("%s/%d", t.Name(), limit),
			Dir:         rawArtifact(t, "grow.wasm", growBy300Pages),
			Wasm:        runtime.WasmSpec{Module: "grow.wasm"},
			MemoryBytes: limit,
		})
		if rec := get(t, in, "", "/"); rec.Code != want {
			t.Errorf("limit %d MiB: status %d, want %d", limit>>20, rec.Code, want)
		}
	}
}

// maxAllocated finds the last "allocated N MiB" the memory bomb logged.
func maxAllocated(logs string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		var m int
		if _, err := fmt.Sscanf(line, "stderr: allocated %d MiB", &m); err == nil && m > n {
			n = m
		}
	}
	return n
}

func TestGarbageIs502(t *testing.T) {
	t.Parallel()
	in, logs := startGuest(t, sharedExecutor(t), "garbage", nil)
	rec := get(t, in, "", "/")
	wantStatus(t, rec, http.StatusBadGateway)
	if strings.Contains(rec.Body.String(), "<h1>") {
		t.Errorf("garbage passed through: %q", rec.Body.String())
	}
	logs.WantContains(t, `v9: 502 malformed CGI response: bad header line "<h1>no headers here</h1>"`)
}

func TestTraps(t *testing.T) {
	t.Parallel()
	ex := sharedExecutor(t)
	for name, bin := range map[string][]byte{"unreachable": trapUnreachable, "out of bounds memory access": trapOutOfBounds} {
		sink := &runtimetest.Logs{}
		in := startSpec(t, ex, runtime.Spec{
			ID:   t.Name() + "/" + name,
			Dir:  rawArtifact(t, "trap.wasm", bin),
			Wasm: runtime.WasmSpec{Module: "trap.wasm"},
			Log:  sink.Log,
		})
		wantStatus(t, get(t, in, "", "/"), http.StatusInternalServerError)
		sink.WantContains(t, "v9: 500 component failed")
		sink.WantContains(t, name)
	}
}

func TestExitCodesAndPanics(t *testing.T) {
	t.Parallel()
	in, logs := startGuest(t, sharedExecutor(t), "cgi", nil)

	rec := get(t, in, "", "/exit3")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.String() != "partial but valid\n" {
		t.Errorf("body %q", rec.Body.String())
	}
	logs.WantContains(t, "v9: component exited with code 3 after writing its response")
	wantStatus(t, get(t, in, "", "/exit3-silent"), http.StatusInternalServerError)
	logs.WantContains(t, "exited with code 3 without output")

	wantStatus(t, get(t, in, "", "/panic"), http.StatusInternalServerError)
	logs.WantContains(t, "stderr: panic: boom")
	logs.WantContains(t, "exited with code 2 without output")
}

func TestStderrGoesToLog(t *testing.T) {
	t.Parallel()
	in, logs := startGuest(t, sharedExecutor(t), "cgi", nil)
	wantStatus(t, get(t, in, "", "/stderr"), http.StatusOK)
	logs.WantContains(t, "stderr: first line to stderr\nstderr: second line")
}

func TestSandbox(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "outside.txt")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	var dir string
	in, _ := startGuest(t, sharedExecutor(t), "cgi", func(s *runtime.Spec) {
		dir = s.Dir
		if err := os.WriteFile(filepath.Join(s.Dir, "data.txt"), []byte("hello data"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(s.Dir, "link.txt")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(filepath.Dir(s.Dir), "outside.txt"), []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
	})

	rec := get(t, in, "", "/fs")
	wantStatus(t, rec, http.StatusOK)
	body := rec.Body.String()
	t.Logf("guest says:\n%s", body)
	if !strings.Contains(body, `read: "hello data" <nil>`) {
		t.Errorf("guest cannot read its own files")
	}
	for _, what := range []string{"write", "dotdot", "symlink"} {
		if strings.Contains(body, what+": <nil>") || !strings.Contains(body, what+": ") {
			t.Errorf("%s: the guest was not refused", what)
		}
	}
	if !strings.Contains(body, "write: open /x: Read-only file system") {
		t.Errorf("write: want a read-only file system error")
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the guest created /x: %v", err)
	}
	if strings.Contains(body, "secret") {
		t.Errorf("the guest read a file outside its artifact")
	}

	rec = get(t, in, "", "/net")
	wantStatus(t, rec, http.StatusOK)
	if !strings.HasPrefix(rec.Body.String(), "dial: ") || strings.Contains(rec.Body.String(), "<nil>") {
		t.Errorf("network: %q", rec.Body.String())
	}

	rec = get(t, in, "", "/time")
	wantStatus(t, rec, http.StatusOK)
	if year, _ := strconv.Atoi(strings.TrimSpace(rec.Body.String())); year < 2025 {
		t.Errorf("guest clock says year %q", rec.Body.String())
	}
}

func TestConcurrentRequestsShareNothing(t *testing.T) {
	t.Parallel()
	in, _ := startGuest(t, sharedExecutor(t), "cgi", nil)
	srv := httptest.NewServer(in)
	defer srv.Close()

	const n = 20
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := http.Get(fmt.Sprintf("%s/counter?id=%d", srv.URL, i))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("count=1 id=%d\n", i); resp.StatusCode != http.StatusOK || string(b) != want {
				errs <- fmt.Errorf("request %d: %d %q, want %q", i, resp.StatusCode, b, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestBadArtifacts(t *testing.T) {
	t.Parallel()
	ex := sharedExecutor(t)
	outside := filepath.Join(t.TempDir(), "real.wasm")
	if err := os.WriteFile(outside, trapUnreachable, 0o644); err != nil {
		t.Fatal(err)
	}
	symlinked := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(symlinked, "hello.wasm")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, dir, module, want string
	}{
		{"not wasm", rawArtifact(t, "hello.wasm", []byte("#!/bin/sh\necho hello\n")), "hello.wasm",
			`module hello.wasm is not a WebAssembly module: it does not start with the \0asm magic number`},
		{"empty file", rawArtifact(t, "hello.wasm", nil), "hello.wasm", "module hello.wasm is not a WebAssembly module"},
		{"truncated", rawArtifact(t, "hello.wasm", trapUnreachable[:20]), "hello.wasm", "module hello.wasm is not a valid WebAssembly module"},
		{"missing", t.TempDir(), "hello.wasm", "module hello.wasm not found in the artifact"},
		{"no module named", t.TempDir(), "", "no wasm module named"},
		{"dotdot", t.TempDir(), "../x.wasm", `module path "../x.wasm" must be relative and stay inside the artifact`},
		{"absolute", t.TempDir(), outside, "must be relative and stay inside the artifact"},
		{"symlink out", symlinked, "hello.wasm", "module hello.wasm cannot be read"},
		{"foreign import", rawArtifact(t, "x.wasm", importsEnv), "x.wasm", "module x.wasm imports env.foo, which v9 does not provide"},
		{"missing dir", filepath.Join(t.TempDir(), "nope"), "hello.wasm", "artifact directory cannot be opened"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ex.Start(context.Background(), runtime.Spec{
				ID: t.Name(), Dir: tc.dir, Wasm: runtime.WasmSpec{Module: tc.module},
			})
			if !errors.Is(err, runtime.ErrBadArtifact) {
				t.Fatalf("error %v does not match ErrBadArtifact", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestStopAndLifecycle(t *testing.T) {
	t.Parallel()
	ex := newExecutor(t, Config{})
	ctx := context.Background()
	spec := func(id string) runtime.Spec {
		return runtime.Spec{ID: id, Dir: artifact(t, "hello", nil), Digest: guestDigests["hello"],
			Wasm: runtime.WasmSpec{Module: "hello.wasm"}}
	}
	a, err := ex.Start(ctx, spec("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Start(ctx, spec("a")); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("second start of a: %v, want ErrDuplicateID", err)
	}
	b, err := ex.Start(ctx, spec("b"))
	if err != nil {
		t.Fatal(err)
	}
	if n := compiledCount(ex); n != 1 {
		t.Fatalf("%d compiled modules for one digest", n)
	}
	select {
	case <-a.Done():
		t.Fatal("Done closed before Stop")
	default:
	}

	if err := ex.Stop(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := ex.Stop(ctx, "a"); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if err := ex.Stop(ctx, "never-started"); err != nil {
		t.Fatalf("stop of an unknown id: %v", err)
	}
	<-a.Done()
	if a.Err() != nil {
		t.Errorf("Err after stop: %v", a.Err())
	}
	wantStatus(t, get(t, a, "", "/"), http.StatusServiceUnavailable)
	wantStatus(t, get(t, b, "", "/"), http.StatusOK) // b still holds the compiled module
	if n := compiledCount(ex); n != 1 {
		t.Fatalf("%d compiled modules while b runs", n)
	}
	if err := ex.Stop(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if n := compiledCount(ex); n != 0 {
		t.Fatalf("%d compiled modules after the last stop", n)
	}

	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Start(ctx, spec("c")); !errors.Is(err, ErrClosed) {
		t.Fatalf("start after close: %v, want ErrClosed", err)
	}
}

func compiledCount(ex *Executor) int {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return len(ex.modules)
}

func TestStopCancelsRequestsInFlight(t *testing.T) {
	t.Parallel()
	ex := newExecutor(t, Config{})
	in := startSpec(t, ex, runtime.Spec{
		ID: "loop", Dir: artifact(t, "loop", nil), Digest: guestDigests["loop"],
		Wasm: runtime.WasmSpec{Module: "loop.wasm"}, Timeout: time.Minute,
	})
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		done <- rec.Code
	}()
	// Wait until the request is in flight.
	inst := in.(*instance)
	deadline := time.Now().Add(30 * time.Second)
	for !inflight(inst) {
		if time.Now().After(deadline) {
			t.Fatal("request never started")
		}
		time.Sleep(5 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := ex.Stop(ctx, "loop"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("stop took %s", took)
	}
	if code := <-done; code != http.StatusServiceUnavailable {
		t.Errorf("request cut by stop: status %d, want 503", code)
	}
}

// inflight reports whether a request is running on the instance.
func inflight(in *instance) bool { return in.active.Load() > 0 }

func TestClientCancel(t *testing.T) {
	t.Parallel()
	ex := newExecutor(t, Config{})
	in := startSpec(t, ex, runtime.Spec{
		ID: "loop", Dir: artifact(t, "loop", nil), Digest: guestDigests["loop"],
		Wasm: runtime.WasmSpec{Module: "loop.wasm"}, Timeout: time.Minute,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	t0 := time.Now()
	in.ServeHTTP(httptest.NewRecorder(), req)
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("a cancelled request ran %s", took)
	}
}
