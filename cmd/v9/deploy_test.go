package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/velocity9/v9/internal/testkit"
	"github.com/velocity9/v9/node"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	logsv1 "github.com/velocity9/v9/rpc/gen/v9/logs/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	statsv1 "github.com/velocity9/v9/rpc/gen/v9/stats/v1"
)

const helloExample = "../../examples/hello-wasm"

// helloCopy copies examples/hello-wasm into a temporary directory and builds hello.wasm
// there with GOOS=wasip1 GOARCH=wasm.
func helloCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(helloExample)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "hello.wasm" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(helloExample, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "hello.wasm"), ".")
	build.Dir = helloExample
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build hello.wasm: %v\n%s", err, out)
	}
	return dir
}

// warmWasmCache fills the test cluster's wazero compilation cache with module, compiled by
// runtime/wasm's precompile helper built without the race detector: under -race wazero
// compiles a Go-built module some twenty times slower (25-35 s, while Raft starves), which
// would make the test about the compiler. Without -race it does nothing.
//
// node.NewTestCluster shares one cache directory, os.MkdirTemp("", "v9-test-wasm-cache-"),
// among the nodes of the process; TestMain's private TMPDIR makes it the only match here.
func warmWasmCache(t *testing.T, module string) {
	t.Helper()
	if !raceEnabled {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "v9-test-wasm-cache-*"))
	if len(dirs) != 1 {
		t.Logf("no single test wasm cache in %s (%v): the nodes compile %s themselves, slowly under -race", os.TempDir(), dirs, module)
		return
	}
	// Both binaries key the cache with the wazero version of this module's go.mod (a test
	// binary has build information: no -X override, or the keys differ).
	pc := exec.Command("go", "run", "github.com/velocity9/v9/runtime/wasm/internal/precompile", "-cache", dirs[0], module)
	if out, err := pc.CombinedOutput(); err != nil {
		t.Fatalf("precompile %s: %v\n%s", module, err, out)
	}
}

func httpGet(url string) (int, string, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestCLIDeploy deploys examples/hello-wasm with `v9 deploy` through a follower of a
// three-node cluster, then reads it back with `v9 logs`, `v9 deployments list` and
// `v9 stats`.
func TestCLIDeploy(t *testing.T) {
	dir := helloCopy(t)
	c := node.NewTestCluster(t, 3)
	warmWasmCache(t, filepath.Join(dir, "hello.wasm"))
	f := c.Follower(t)
	cli := func(args ...string) []string { return append([]string{"--addr", f.APIAddr()}, args...) }

	// A directory without v9.toml fails before anything is sent.
	failCLI(t, "has no v9.toml", cli("deploy", t.TempDir())...)
	failCLI(t, "no such directory", cli("deploy", filepath.Join(dir, "nope"))...)

	r := mustCLI(t, cli("deploy", dir, "-m", "first deploy", "--author", "tester")...)
	if !strings.Contains(r.stdout, "serving: hello (deployment ") {
		t.Fatalf("deploy does not say it serves: %s", r)
	}
	for _, want := range []string{"deploying hello (wasm)", "uploaded ", "instances running"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("deploy progress lacks %q: %s", want, r)
		}
	}

	// Serving, as the CLI said: the follower's proxy answers at once.
	url := "http://" + f.ProxyAddr() + "/hello/"
	code, body, err := httpGet(url)
	if err != nil || code != http.StatusOK || !strings.Contains(body, "hello from wasm") {
		t.Fatalf("GET %s right after deploy: %d %q %v", url, code, body, err)
	}

	// The access line of that request shows in the merged logs.
	var logs cliResult
	node.Eventually(t, 5*time.Second, func() error {
		logs = runCLI(t, cli("logs", "hello")...)
		if logs.code != 0 || !strings.Contains(logs.stdout, "GET /hello/") {
			return fmt.Errorf("no access line yet: %s", logs)
		}
		return nil
	})
	for _, line := range strings.Split(strings.TrimSpace(logs.stdout), "\n") {
		if fields := strings.Fields(line); len(fields) < 4 || len(fields[0]) != len("15:04:05.000") {
			t.Errorf("log line not TIME NODE STREAM INSTANCE TEXT: %q", line)
		}
	}
	jl := mustCLI(t, cli("--json", "logs", "hello", "-n", "50")...)
	sawAccess := false
	for _, line := range strings.Split(strings.TrimSpace(jl.stdout), "\n") {
		var l logsv1.LogLine
		if err := protojson.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("logs --json line %q: %v", line, err)
		}
		sawAccess = sawAccess || (l.GetComponent() == "hello" && strings.Contains(l.GetText(), "GET /hello/"))
	}
	if !sawAccess {
		t.Errorf("logs --json has no access line: %s", jl)
	}

	// History: one ready deployment, the active one.
	var list deployv1.ListResponse
	decode(t, mustCLI(t, cli("--json", "deployments", "list", "hello")...), &list)
	if ds := list.GetDeployments(); len(ds) != 1 || ds[0].GetStatus() != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY ||
		ds[0].GetCommitMessage() != "first deploy" || ds[0].GetAuthor() != "tester" {
		t.Fatalf("deployments list --json: %v", ds)
	}
	first := list.GetDeployments()[0].GetId()
	table := mustCLI(t, cli("deployments", "list", "hello")...)
	for _, want := range []string{"ID", "STATUS", "ACTIVE", first, "ready", "first deploy", "*"} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("deployments list lacks %q:\n%s", want, table.stdout)
		}
	}

	// Stats count the request, summed over the nodes.
	node.Eventually(t, 5*time.Second, func() error {
		r := runCLI(t, cli("--json", "stats", "hello")...)
		var s statsv1.SeriesResponse
		if r.code != 0 || protojson.Unmarshal([]byte(r.stdout), &s) != nil {
			return fmt.Errorf("stats --json: %s", r)
		}
		var n uint64
		for _, b := range s.GetBuckets() {
			n += b.GetRequests()
		}
		if n < 1 {
			return fmt.Errorf("stats --json: %d requests: %s", n, r)
		}
		return nil
	})
	if st := mustCLI(t, cli("stats", "hello")...); !strings.Contains(st.stdout, "TOTAL") || !strings.Contains(st.stdout, "AVG ms") {
		t.Errorf("stats table:\n%s", st.stdout)
	}
	// `v9 component stats` is the same table, with latency p50 and p99 (from the histograms).
	st := mustCLI(t, cli("component", "stats", "hello")...)
	if !strings.Contains(st.stdout, "P50 ms") || !strings.Contains(st.stdout, "P99 ms") {
		t.Errorf("component stats has no p50/p99 columns:\n%s", st.stdout)
	}
	for _, line := range strings.Split(st.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 10 && f[0] == "TOTAL" {
			if p50, err := strconv.ParseFloat(f[7], 64); err != nil || p50 <= 0 {
				t.Errorf("component stats: TOTAL p50 %q, want > 0:\n%s", f[7], st.stdout)
			}
		}
	}

	// logs -f prints a new request's access line, and ends cleanly when its context does.
	follow := startCLI(t, cli("logs", "hello", "-f", "-n", "1")...)
	var sent time.Time
	node.Eventually(t, 5*time.Second, func() error {
		if time.Since(sent) > time.Second { // again, in case the stream was not open yet
			sent = time.Now()
			if _, _, err := httpGet(url + "followed"); err != nil {
				return err
			}
		}
		if !strings.Contains(follow.stdout.String(), "GET /hello/followed") {
			return fmt.Errorf("logs -f has not shown the request yet:\n%s", follow.stdout.String())
		}
		return nil
	})
	if code := follow.stop(t); code != 0 {
		t.Fatalf("logs -f stopped with exit %d: %s", code, follow.stderr.String())
	}

	// A second deploy with --json prints the final progress report; the history has both.
	var done deployv1.WatchResponse
	decode(t, mustCLI(t, cli("--json", "deploy", dir, "-m", "second")...), &done)
	if !done.GetDone() || done.GetDeployment().GetStatus() != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY ||
		done.GetRunning() < done.GetWanted() || done.GetDeployment().GetId() == first {
		t.Fatalf("deploy --json: %v", &done)
	}
	decode(t, mustCLI(t, cli("--json", "deployments", "list", "hello")...), &list)
	if ds := list.GetDeployments(); len(ds) != 2 || ds[0].GetId() != done.GetDeployment().GetId() {
		t.Fatalf("after a second deploy, list: %v", ds)
	}

	// A module that is not WebAssembly fails its deployment with the reason.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "v9.toml"), []byte("name = \"bad\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"bad.wasm\"\n"), 0o644)
	os.WriteFile(filepath.Join(bad, "bad.wasm"), []byte("not wasm"), 0o644)
	// (stderr starts with the "deploying" progress line, so not failCLI)
	if r := runCLI(t, cli("deploy", bad)...); r.code == 0 || !strings.Contains(r.stderr, "\nerror: deployment ") ||
		!strings.Contains(r.stderr, "not a WebAssembly module") {
		t.Fatalf("deploy of a bad module: %s", r)
	}

	failCLI(t, "not found", cli("logs", "nosuch")...)
	failCLI(t, "not found", cli("deployments", "list", "nosuch")...)
}

// runningCLI is an invocation of the CLI running in the background.
type runningCLI struct {
	cancel         context.CancelFunc
	stdout, stderr *testkit.Buffer
	done           chan int
}

func startCLI(t *testing.T, args ...string) *runningCLI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningCLI{cancel: cancel, stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}, done: make(chan int, 1)}
	go func() { r.done <- execute(ctx, args, r.stdout, r.stderr, false) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the invocation and returns its exit code.
func (r *runningCLI) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code
		return code
	case <-time.After(5 * time.Second):
		t.Fatalf("CLI did not stop within 5s of its context's end")
		return -1
	}
}

// TestCLIDeployOffline checks what `v9 deploy` refuses before it reaches any node.
func TestCLIDeployOffline(t *testing.T) {
	empty := t.TempDir()
	r := failCLI(t, "has no v9.toml", "--addr", "127.0.0.1:1", "deploy", empty)
	if !strings.Contains(r.stderr, "hint: ") {
		t.Errorf("no hint for a missing manifest: %s", r)
	}
	noModule := t.TempDir()
	os.WriteFile(filepath.Join(noModule, "v9.toml"), []byte("name = \"x\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"x.wasm\"\n"), 0o644)
	failCLI(t, "not found", "--addr", "127.0.0.1:1", "deploy", noModule)
	os.WriteFile(filepath.Join(noModule, "x.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	if r := runCLI(t, "--addr", "127.0.0.1:1", "deploy", noModule, "--timeout", "1ns"); r.code != 1 ||
		!strings.Contains(r.stderr, "error: the upload did not finish within --timeout 1ns") {
		t.Errorf("deploy --timeout 1ns: %s", r)
	}
	failCLI(t, "--timeout", "--addr", "127.0.0.1:1", "deploy", noModule, "--timeout", "0s")
	failCLI(t, "-n 0", "--addr", "127.0.0.1:1", "logs", "x", "-n", "0")
	file := filepath.Join(noModule, "v9.toml")
	failCLI(t, "not a directory", "--addr", "127.0.0.1:1", "deploy", file)
	failCLI(t, "at most one argument", "--addr", "127.0.0.1:1", "deploy", "a", "b")
	failCLI(t, "--minutes", "--addr", "127.0.0.1:1", "stats", "x", "--minutes", "0")

	var buf bytes.Buffer
	if err := printStats(&buf, &statsv1.SeriesResponse{Component: "x", BucketSeconds: 10, Nodes: []string{"n1"}}, 60, time.Now()); err != nil ||
		!strings.Contains(buf.String(), "No requests to x") {
		t.Errorf("empty stats: %q %v", buf.String(), err)
	}

	// p50 and p99: each bucket's as the server computed them, the total's from the buckets'
	// histograms added up (bounds 1, 2, 5 ms: ten requests under 1 ms, ten in 2–5 ms).
	buf.Reset()
	now := time.Now().Unix()
	series := &statsv1.SeriesResponse{Component: "x", BucketSeconds: 10, Nodes: []string{"n1"}, LatencyBoundsMs: []float64{1, 2, 5}, Buckets: []*statsv1.Bucket{
		{StartUnix: now - 20, Requests: 10, Status_2Xx: 10, LatencySumMs: 5, LatencyMaxMs: 1, LatencyHistogram: []uint64{10, 0, 0, 0}, LatencyP50Ms: 0.5, LatencyP99Ms: 1},
		{StartUnix: now - 10, Requests: 10, Status_2Xx: 10, LatencySumMs: 40, LatencyMaxMs: 4.5, LatencyHistogram: []uint64{0, 0, 10, 0}, LatencyP50Ms: 3.5, LatencyP99Ms: 4.5},
	}}
	if err := printStats(&buf, series, 60, time.Now()); err != nil {
		t.Fatal(err)
	}
	var total []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "TOTAL" {
			total = f
		}
	}
	if want := []string{"TOTAL", "20", "20", "0", "0", "0", "2.2", "1.0", "4.5", "4.5"}; !slices.Equal(total, want) {
		t.Errorf("stats TOTAL = %v, want %v (p50 1.0, p99 capped at the max 4.5):\n%s", total, want, buf.String())
	}
	if !strings.Contains(buf.String(), "P50 ms") || !strings.Contains(buf.String(), "3.5") {
		t.Errorf("stats rows lack the buckets' p50:\n%s", buf.String())
	}
}
