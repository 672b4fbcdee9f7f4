package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/runtimetest"
	"github.com/velocity9/v9/runtime/wasm/wasmtest"
)

// Guests the tests build from ../../examples, by name; each becomes <name>.wasm.
var guestPkgs = map[string]string{
	"hello":   "../../examples/hello-wasm",
	"loop":    "../../examples/wasm-guests/loop",
	"membomb": "../../examples/wasm-guests/membomb",
	"garbage": "../../examples/wasm-guests/garbage",
	"echo":    "../../examples/wasm-guests/echo",
	"cgi":     "../../examples/wasm-guests/cgi",
}

// Reactors the tests build (GOOS=wasip1 -buildmode=c-shared) for the "http" ABI.
var reactorPkgs = map[string]string{
	"hellohttp":  "../../examples/hello-http",
	"streamhttp": "../../examples/stream-http",
	"httpv1":     "../../examples/wasm-guests/httpv1",
}

var (
	guestDir     string            // <guestDir>/<name>.wasm
	guestDigests map[string]string // name → "sha256:..."
	cacheDir     string            // the wazero compilation cache every test executor shares

	sharedOnce sync.Once
	shared     *Executor
	sharedErr  error
)

// TestMain builds the guests once and fills the compilation cache with a helper built without
// the race detector (wazero's compiler runs ~20x slower under -race).
func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run() // a fuzzing worker runs one fuzz target, which needs no guest
	}
	tmp, err := os.MkdirTemp("", "v9-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	t0 := time.Now()
	guestDir = filepath.Join(tmp, "guests")
	if err := buildGuests(guestDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	t1 := time.Now()
	cacheDir = os.Getenv("V9_WASM_TEST_CACHE") // set it to keep compiled guests across runs
	if cacheDir == "" {
		cacheDir = filepath.Join(tmp, "cache")
	}
	// Compile every guest once, in parallel, before the tests ask for them all at once; under
	// the race detector this is what keeps the tests fast.
	if err := precompile(cacheDir); err != nil {
		fmt.Fprintln(os.Stderr, "warning: precompile failed, tests will compile their guests:", err)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "guests built in %s, precompiled in %s\n",
			t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	}

	code := m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close shared executor:", err)
			code = 1
		}
	}
	return code
}

func buildGuests(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(guestPkgs))
	for name := range guestPkgs {
		names = append(names, name)
	}
	slices.Sort(names)
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, guestPkgs[n])
	}
	cmd := exec.Command(goTool(), args...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build guests: %v\n%s", err, out)
	}
	for n, pkg := range reactorPkgs {
		cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags=-s -w", "-buildmode=c-shared",
			"-o", filepath.Join(dir, filepath.Base(pkg)), pkg)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build reactor %s: %v\n%s", n, err, out)
		}
		names = append(names, n)
		guestPkgs[n] = pkg // so that the loop below and precompile find it
	}
	guestDigests = make(map[string]string)
	for _, n := range names {
		built := filepath.Join(dir, filepath.Base(guestPkgs[n]))
		final := filepath.Join(dir, n+".wasm")
		if err := os.Rename(built, final); err != nil {
			return err
		}
		b, err := os.ReadFile(final)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		guestDigests[n] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return nil
}

func precompile(cache string) error {
	var mods []string
	for name := range guestPkgs {
		mods = append(mods, filepath.Join(guestDir, name+".wasm"))
	}
	args := append([]string{"run",
		"-ldflags=-X=github.com/tetratelabs/wazero/internal/version.version=dev",
		"./internal/precompile", "-cache", cache}, mods...)
	out, err := exec.Command(goTool(), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}

// goTool is the go command that builds guests and the precompile helper.
func goTool() string {
	if goBin := os.Getenv("GO"); goBin != "" {
		return goBin
	}
	return "go"
}

// sharedExecutor is one executor for the tests that need no special limits, so each guest
// is loaded from the cache only once.
func sharedExecutor(t testing.TB) *Executor {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = New(Config{CacheDir: cacheDir, MaxRunning: testMaxRunning})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// testMaxRunning is the tests' bound on guests executing at once, each executor its own:
// the process-wide default (GOMAXPROCS-1) would make parallel tests wait on each other's
// guests (an infinite loop holds its place until its timeout).
const testMaxRunning = 4

// newExecutor returns a private executor closed when the test ends.
func newExecutor(t testing.TB, cfg Config) *Executor {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir
	}
	if cfg.MaxRunning == 0 {
		cfg.MaxRunning = testMaxRunning
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ex, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ex.Close(); err != nil {
			t.Errorf("close executor: %v", err)
		}
	})
	return ex
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// artifact makes an artifact directory holding guest as <guest>.wasm, and extra files.
func artifact(t testing.TB, guest string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(guestDir, guest+".wasm")
	dst := filepath.Join(dir, guest+".wasm")
	if err := os.Link(src, dst); err != nil {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startGuest starts an instance of a built guest; it is stopped when the test ends.
func startGuest(t testing.TB, ex *Executor, guest string, mod func(*runtime.Spec)) (runtime.Instance, *runtimetest.Logs) {
	t.Helper()
	sink := &runtimetest.Logs{}
	spec := runtime.Spec{
		ID:        t.Name() + "/" + guest,
		Component: guest,
		Dir:       artifact(t, guest, nil),
		Digest:    guestDigests[guest],
		Wasm:      runtime.WasmSpec{Module: guest + ".wasm"},
		Log:       sink.Log,
	}
	if mod != nil {
		mod(&spec)
	}
	return startSpec(t, ex, spec), sink
}

func startSpec(t testing.TB, ex *Executor, spec runtime.Spec) runtime.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in, err := ex.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start %s: %v", spec.ID, err)
	}
	t.Cleanup(func() {
		if err := ex.Stop(context.Background(), spec.ID); err != nil {
			t.Errorf("stop %s: %v", spec.ID, err)
		}
	})
	return in
}

// get sends one request to h as the proxy would when routing by path prefix script.
func get(t testing.TB, h http.Handler, script, target string) *httptest.ResponseRecorder {
	t.Helper()
	return do(t, h, http.MethodGet, target, nil, map[string]string{ScriptNameHeader: script})
}

func do(t testing.TB, h http.Handler, method, target string, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func wantStatus(t testing.TB, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %q", rec.Code, status, rec.Body.String())
	}
}

// Hand-assembled modules: wazero needs no toolchain, and neither do these tests.
var (
	// (module (func (export "_start") unreachable) (memory (export "memory") 1))
	trapUnreachable = wasmModule([]byte{0x00, 0x00, 0x0b})
	// (module (func (export "_start") (drop (i32.load (i32.const 0x7fffffff)))) (memory ...))
	trapOutOfBounds = wasmModule([]byte{0x00, 0x41, 0xff, 0xff, 0xff, 0xff, 0x07, 0x28, 0x02, 0x00, 0x1a, 0x0b})
	// (module (import "env" "foo" (func)) (func (export "_start")))
	importsEnv = []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
		0x02, 0x0b, 0x01, 0x03, 'e', 'n', 'v', 0x03, 'f', 'o', 'o', 0x00, 0x00, // import env.foo
		0x03, 0x02, 0x01, 0x00, // one function of type 0
		0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01, // export _start = func 1
		0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // empty body
	}
)

// wasmModule assembles a module whose exported _start has the given body (locals and code,
// ending in 0x0b) and which exports one page of memory.
func wasmModule(body []byte) []byte {
	b := []byte{
		0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
		0x03, 0x02, 0x01, 0x00, // one function of type 0
		0x05, 0x03, 0x01, 0x00, 0x01, // memory, min 1 page
		0x07, 0x13, 0x02, // exports
		0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,
		0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00,
	}
	code := append([]byte{0x01, byte(len(body))}, body...)
	b = append(b, 0x0a, byte(len(code)))
	return append(b, code...)
}

// tinyCGI assembles the smallest CGI guest: one fd_write of out to stdout. It is what a
// guest costs when wazero has almost nothing to instantiate (a Go guest brings a 2 MiB
// runtime with it), so v9's own per-request cost shows.
//
//	(module
//	  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
//	  (memory (export "memory") 1)
//	  (data (i32.const 0) "<iovec: 16, len(out)>")
//	  (data (i32.const 16) out)
//	  (func (export "_start") (drop (call 0 (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
func tinyCGI(out string) []byte { return wasmtest.TinyCGI(out) }

// growBy300Pages tries to grow its one-page memory by 300 pages (18.8 MiB in all) and exits
// 0 if that worked, 1 if not, writing nothing.
//
//	(module
//	  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
//	  (memory (export "memory") 1)
//	  (func (export "_start") (call 0 (i32.eq (memory.grow (i32.const 300)) (i32.const -1)))))
var growBy300Pages = cat(
	wasmHeader,
	section(1, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00),
	section(2, cat([]byte{0x01}, str("wasi_snapshot_preview1"), str("proc_exit"), []byte{0x00, 0x00})...),
	section(3, 0x01, 0x01),
	section(5, 0x01, 0x00, 0x01),
	section(7, cat([]byte{0x02}, str("_start"), []byte{0x00, 0x01}, str("memory"), []byte{0x02, 0x00})...),
	section(10, 0x01, 0x0c, 0x00, 0x41, 0xac, 0x02, 0x40, 0x00, 0x41, 0x7f, 0x46, 0x10, 0x00, 0x0b),
)

// The hand assembler lives in wasmtest; these short names keep the modules above readable.
var (
	wasmHeader = wasmtest.Header
	section    = wasmtest.Section
	str        = wasmtest.Str
	cat        = wasmtest.Cat
)

// rawArtifact writes module bytes as <name> into a fresh artifact directory.
func rawArtifact(t testing.TB, name string, bin []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
