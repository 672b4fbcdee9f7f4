package container

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/container/ociimage"
	"github.com/velocity9/v9/runtime/container/ocitest"
	"github.com/velocity9/v9/runtime/runtimetest"
)

const testImage = "v9.local/hello-ctr:test"

// runtimeBinary is the OCI runtime of the tests' executors (Config.RuntimeBinary), such as
// -container.runtime=crun to compare it with runc in BenchmarkColdStart.
var runtimeBinary = flag.String("container.runtime", "", "OCI runtime the runc shim runs (default runc)")

var (
	// testSocket is the containerd the tests use; skipReason says why there is none.
	testSocket string
	skipReason string
	// appDir is a component directory: image.tar (the example in an OCI archive) and
	// message.txt. Tests share it read-only.
	appDir    string
	appDigest string // sha256 of image.tar, as the artifact's digest
	appErr    error
	appOnce   sync.Once
	tempRoot  string
)

func TestMain(m *testing.M) {
	var stop func()
	testSocket, skipReason, stop = ocitest.ForTestMain("runtime/container")
	var err error
	tempRoot, err = os.MkdirTemp("", "v9-container-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	ocitest.RemoveNetState(filepath.Join(tempRoot, "net"))
	os.RemoveAll(tempRoot)
	if testSocket != "" {
		_ = exec.Command("ip", "link", "del", testNetwork().Bridge).Run() // this process's own
		// Its firewall too: every run left a dozen rules that every packet is checked against.
		if err := RemoveFirewall(testNetwork().Bridge); err != nil {
			fmt.Fprintln(os.Stderr, "runtime/container tests: remove the test bridge's firewall:", err)
		}
	}
	os.Exit(code)
}

// needContainerd skips the test when no containerd is available (never under CI).
func needContainerd(t testing.TB) {
	t.Helper()
	if testSocket == "" {
		t.Skip(skipReason)
	}
}

// testApp builds the example into an image archive once and returns the component directory.
func testApp(t testing.TB) string {
	t.Helper()
	appOnce.Do(func() {
		dir := filepath.Join(tempRoot, "app")
		if appErr = os.MkdirAll(dir, 0o755); appErr != nil {
			return
		}
		bin := filepath.Join(tempRoot, "hello")
		if appErr = ociimage.GoBuild(bin, filepath.Join("..", "..", "examples", "hello-container")); appErr != nil {
			return
		}
		if appErr = ociimage.WriteArchiveFile(filepath.Join(dir, "image.tar"), bin, "hello", testImage); appErr != nil {
			return
		}
		var archive []byte
		if archive, appErr = os.ReadFile(filepath.Join(dir, "image.tar")); appErr != nil {
			return
		}
		appDigest = fmt.Sprintf("sha256:%x", sha256.Sum256(archive))
		appErr = os.WriteFile(filepath.Join(dir, "message.txt"), []byte("a message from /app\n"), 0o644)
		appDir = dir
	})
	if appErr != nil {
		t.Fatal(appErr)
	}
	return appDir
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newExecutor returns an executor for node, closed (not stopping its containers) at the
// end of the test.
func newExecutor(t testing.TB, node string) *Executor {
	t.Helper()
	needContainerd(t)
	e, err := New(Config{
		Socket:        testSocket,
		NodeID:        node,
		StateDir:      filepath.Join(tempRoot, "state", node),
		StopGrace:     5 * time.Second,
		ReadyTimeout:  20 * time.Second,
		RuntimeBinary: *runtimeBinary,
		Network:       testNetwork(),
		Logger:        testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// testNetwork is the tests' container network: a bridge and subnet of this process's own
// (10.240–255.x.0/24 by pid; node's tests use 10.220–235), never v9br0, and leases and
// namespaces under tempRoot.
func testNetwork() Network {
	return Network{
		Bridge:   fmt.Sprintf("v9tr%d", os.Getpid()%1000000),
		Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(240 + os.Getpid()/256%16), byte(os.Getpid() % 256), 0}), 24),
		StateDir: filepath.Join(tempRoot, "net"),
	}
}

// testSpec is a spec for the example, imported from the archive.
func testSpec(t testing.TB, id string, l *runtimetest.Logs) runtime.Spec {
	dir := testApp(t)
	s := runtime.Spec{
		ID:           id,
		Component:    "hello-ctr",
		ComponentID:  "c-1",
		DeploymentID: "d-1",
		Dir:          dir,
		Digest:       appDigest,
		Env:          map[string]string{"GREETING": "hi there"},
		Container:    runtime.ContainerSpec{Image: testImage, ImageArchive: "image.tar"},
	}
	if l != nil {
		s.Log = l.Log
	}
	return s
}

// startInstance starts spec and stops it at the end of the test.
func startInstance(t testing.TB, e *Executor, spec runtime.Spec) runtime.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inst, err := e.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start %s: %v", spec.ID, err)
	}
	t.Cleanup(func() { e.Stop(context.Background(), spec.ID) })
	return inst
}

// get sends GET path to h and returns the status and body.
func get(h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://hello-ctr.localhost"+path, nil))
	return rec.Code, rec.Body.String()
}

// waitDone waits for inst to end.
func waitDone(t testing.TB, inst runtime.Instance, within time.Duration) {
	t.Helper()
	select {
	case <-inst.Done():
	case <-time.After(within):
		t.Fatalf("instance %s did not end within %s", inst.ID(), within)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
