// These tests serve Go-built wasm modules through the proxies, too slow under the race
// detector; `make test` runs them in its second pass.

//go:build !race

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/wasmtest"
	"github.com/velocity9/v9/node"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// deployCLI runs `v9 deploy` in this process with more time than runCLI gives: a canary
// waits its window, longer on a loaded machine.
func deployCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	for attempt := 0; ; attempt++ {
		// A leader election on a loaded machine may refuse the upload ("unavailable"); a
		// user deploys again.
		if r := runCLIWithin(t, 2*time.Minute, args...); r.code != exitUnavailable || attempt == 2 {
			return r
		}
	}
}

// updateCLI runs an idempotent update until it succeeds: on a loaded machine a write may
// meet a leader election ("may or may not have been applied"), and a user runs it again.
func updateCLI(t *testing.T, args ...string) {
	t.Helper()
	node.Eventually(t, 30*time.Second, func() error {
		if r := runCLI(t, args...); r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
}

// writeDir writes files into a new temporary directory.
func writeDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// traffic sends GET path to every node's proxy, one request after another per node, until
// stop is called, which returns how many answered and the first answers that were not 200.
func traffic(t *testing.T, c *node.TestCluster, path string) (stop func() (ok int64, bad []string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var n atomic.Int64
	var mu sync.Mutex
	var bad []string
	for _, nd := range c.Nodes {
		url := "http://" + nd.ProxyAddr() + path
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, body, err := httpGet(url)
				if err == nil && code == http.StatusOK {
					n.Add(1)
					continue
				}
				mu.Lock()
				if len(bad) < 10 {
					bad = append(bad, fmt.Sprintf("%s: %d %q %v", url, code, body, err))
				}
				mu.Unlock()
			}
		}()
	}
	return func() (int64, []string) {
		cancel()
		wg.Wait()
		return n.Load(), bad
	}
}

// TestNoRaceRolloutBrokenVersionNeverServes: through `v9 deploy`, a module importing a host
// function v9 lacks is refused at upload naming the import; a module whose _start traps
// fails its readiness check on every node, so the deploy ends at once with the reason, the
// deployment is failed, and the running version answers every request meanwhile; a first
// deployment that traps is failed and not left active; a container component on a cluster
// without containerd fails at once saying so.
func TestNoRaceRolloutBrokenVersionNeverServes(t *testing.T) {
	dir := helloCopy(t)
	c := node.NewTestCluster(t, 3)
	f := c.Follower(t)
	cli := func(args ...string) []string { return append([]string{"--addr", f.APIAddr()}, args...) }
	mustCLI(t, cli("deploy", dir)...)

	// The import check, at upload.
	wagi := writeDir(t, map[string][]byte{
		"v9.toml":           []byte("name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"http-example.wasm\"\n"),
		"http-example.wasm": wasmtest.ImportsUnknown("wasi_experimental_http", "req"),
	})
	r := runCLI(t, cli("deploy", wagi)...)
	if r.code != exitPrecondition || !strings.Contains(r.stderr, "imports wasi_experimental_http.req, which v9 does not provide") {
		t.Fatalf("deploy of a module importing an unknown host function: %s", r)
	}

	// A trapping module, under traffic on every proxy.
	trap := writeDir(t, map[string][]byte{
		"v9.toml":   []byte("name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"trap.wasm\"\n"),
		"trap.wasm": wasmtest.Trap(),
	})
	stop := traffic(t, c, "/hello/x")
	start := time.Now()
	r = deployCLI(t, cli("deploy", trap)...)
	took := time.Since(start)
	ok, bad := stop()
	t.Logf("deploy of a trapping module: failed after %s; meanwhile %d requests answered 200, %d not", took.Round(time.Millisecond), ok, len(bad))
	if r.code != 1 || !strings.Contains(r.stderr, "readiness check failed: GET / answered 500") ||
		!strings.Contains(r.stderr, "keeps serving") || strings.Contains(r.stderr, "context deadline exceeded") {
		t.Fatalf("deploy of a trapping module: %s", r)
	}
	if len(bad) > 0 || ok == 0 {
		t.Fatalf("during the failed rollout: %d ok, not ok: %v", ok, bad)
	}
	var list deployv1.ListResponse
	decode(t, mustCLI(t, cli("--json", "deployments", "list", "hello")...), &list)
	ds := list.GetDeployments()
	if len(ds) < 2 || ds[0].GetStatus() != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED || !strings.Contains(ds[0].GetError(), "every instance failed") {
		t.Fatalf("history after the failed rollout: %v", ds)
	}
	for _, n := range c.Nodes {
		if code, body, err := httpGet("http://" + n.ProxyAddr() + "/hello/x"); code != 200 || !strings.Contains(body, "hello from wasm") {
			t.Fatalf("%s after the failed rollout: %d %q %v", n.ID(), code, body, err)
		}
	}

	// A first deployment that traps: failed, not left active while nodes retry.
	first := writeDir(t, map[string][]byte{
		"v9.toml":   []byte("name = \"trapper\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"trap.wasm\"\n"),
		"trap.wasm": wasmtest.Trap(),
	})
	r = deployCLI(t, cli("deploy", first)...)
	if r.code != 1 || !strings.Contains(r.stderr, "nothing else serves") {
		t.Fatalf("first deployment of a trapping module: %s", r)
	}
	if comp := getComponent(t, f.APIAddr(), "trapper"); comp.GetActiveDeploymentId() != "" {
		t.Fatalf("a failed first deployment is still active: %v", comp)
	}

	// Containers on a cluster that cannot run them.
	box := writeDir(t, map[string][]byte{
		"v9.toml": []byte("name = \"box\"\nruntime = \"container\"\n[container]\nimage = \"docker.io/library/busybox:1.36\"\n"),
	})
	start = time.Now()
	r = deployCLI(t, cli("deploy", box)...)
	if r.code != 1 || !strings.Contains(r.stderr, "no node can run containers (containerd not reachable on any node)") {
		t.Fatalf("container deploy without containerd: %s", r)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("container deploy without containerd took %s to fail", took)
	}
}

// buildGuest builds testdata/NAME into dir/NAME.wasm.
func buildGuest(t *testing.T, name, dir string) {
	t.Helper()
	src, _ := filepath.Abs(filepath.Join("testdata", name))
	build := exec.Command("go", "build", "-o", filepath.Join(dir, name+".wasm"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
}

// versionsModule builds testdata/versions and returns the module.
func versionsModule(t *testing.T) []byte {
	t.Helper()
	build := t.TempDir()
	buildGuest(t, "versions", build)
	module, err := os.ReadFile(filepath.Join(build, "versions.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return module
}

// versionsDir is a deployable directory of the versions guest with the given manifest
// tail (env and rollout tables).
func versionsDir(t *testing.T, module []byte, tail string) string {
	return writeDir(t, map[string][]byte{
		"v9.toml":       []byte("name = \"versions\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"versions.wasm\"\n[scale]\nmin = 2\nmax = 2\n" + tail),
		"versions.wasm": module,
	})
}

// TestNoRaceRolloutCanary: a new version that passes its readiness check but answers 5xx
// to real traffic takes its canary share, the proxies' counts fail it before or at the end
// of its window, `v9 deploy` ends with the figures, and the old version serves everything
// again; a good version passes its canary and takes all the traffic; "0%" skips the canary.
func TestNoRaceRolloutCanary(t *testing.T) {
	module := versionsModule(t)
	// The manifests' own 2s windows, not the test clusters' 1s cap.
	c := node.NewTestClusterOpts(t, 3, node.TestOptions{Liveness: node.LivenessConfig{CanaryWindowMax: time.Hour}})
	f := c.Follower(t)
	cli := func(args ...string) []string { return append([]string{"--addr", f.APIAddr()}, args...) }
	rollout := "[rollout]\ncanary = \"50%\"\nwindow = \"2s\"\n"
	if r := deployCLI(t, cli("deploy", versionsDir(t, module, rollout+"[env]\nVERSION = \"1\"\n"))...); r.code != 0 {
		t.Fatalf("first deploy: %s", r)
	}

	// A bad release under traffic: failed by its canary.
	stop := traffic(t, c, "/versions/x")
	start := time.Now()
	r := deployCLI(t, cli("deploy", versionsDir(t, module, rollout+"[env]\nVERSION = \"2\"\nFAIL_PATHS = \"1\"\n"))...)
	took := time.Since(start)
	ok, bad := stop()
	t.Logf("canary auto-rollback: deploy ended after %s (%d requests 200, %d bad seen)", took.Round(time.Millisecond), ok, len(bad))
	if r.code != 1 || !strings.Contains(r.stderr, "canary failed") || !strings.Contains(r.stderr, "the new version answered") ||
		!strings.Contains(r.stderr, "with 5xx") || !strings.Contains(r.stderr, "keeps serving") {
		t.Fatalf("deploy of a bad release: %s", r)
	}
	if len(bad) == 0 {
		t.Fatal("the bad release took no traffic in its canary")
	}
	// Once every node has applied the verdict, only the old version answers.
	node.Eventually(t, 10*time.Second, func() error {
		for _, n := range c.Nodes {
			if d, err := n.Store().Deployment(f.Store().Deployments(getComponent(t, f.APIAddr(), "versions").GetId())[1].GetId()); err != nil || d.GetStatus() != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
				return fmt.Errorf("%s has not applied the failure yet (%v)", n.ID(), err)
			}
		}
		return nil
	})
	for i := 0; i < 20; i++ {
		n := c.Nodes[i%3]
		if code, body, err := httpGet("http://" + n.ProxyAddr() + "/versions/x"); code != 200 || !strings.Contains(body, "version 1") {
			t.Fatalf("%s after the canary failed: %d %q %v", n.ID(), code, body, err)
		}
	}

	// A good release passes its canary; then only it answers.
	stop = traffic(t, c, "/versions/x")
	r = deployCLI(t, cli("deploy", versionsDir(t, module, rollout+"[env]\nVERSION = \"3\"\n"))...)
	ok, bad = stop()
	if r.code != 0 || !strings.Contains(r.stderr, "canary: ") || !strings.Contains(r.stdout, "serving: versions") {
		t.Fatalf("deploy of a good release: %s", r)
	}
	if len(bad) > 0 || ok == 0 {
		t.Fatalf("during a good canary: %d ok, not ok: %v", ok, bad)
	}
	node.Eventually(t, 10*time.Second, func() error {
		for _, n := range c.Nodes {
			for i := 0; i < 5; i++ {
				if code, body, err := httpGet("http://" + n.ProxyAddr() + "/versions/x"); code != 200 || !strings.Contains(body, "version 3") {
					return fmt.Errorf("%s: %d %q %v", n.ID(), code, body, err)
				}
			}
		}
		return nil
	})

	// "0%": no canary.
	r = deployCLI(t, cli("deploy", versionsDir(t, module, "[rollout]\ncanary = \"0%\"\n[env]\nVERSION = \"4\"\n"))...)
	if r.code != 0 || strings.Contains(r.stderr, "canary: ") {
		t.Fatalf("a 0%% canary: %s", r)
	}
}

// TestNoRaceRolloutSettingsSurvive: `v9 component update --env` reaches every replica,
// replacing the instances new-first with no failed request under traffic; a scale change
// restarts nothing; the next `v9 deploy` keeps what the user set, and `v9 component get`
// says where each value comes from.
func TestNoRaceRolloutSettingsSurvive(t *testing.T) {
	dir := helloCopy(t)
	manifest := "name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"hello.wasm\"\n[scale]\nmin = 3\nmax = 3\n[env]\nGREETING = \"manifest\"\n"
	if err := os.WriteFile(filepath.Join(dir, "v9.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	c := node.NewTestCluster(t, 3)
	f := c.Follower(t)
	cli := func(args ...string) []string { return append([]string{"--addr", f.APIAddr()}, args...) }
	if r := deployCLI(t, cli("deploy", dir)...); r.code != 0 {
		t.Fatalf("deploy: %s", r)
	}
	everyReplica := func(want string) {
		t.Helper()
		node.Eventually(t, 60*time.Second, func() error {
			for _, n := range c.Nodes {
				for i := 0; i < 6; i++ { // each node prefers its own replica
					if code, body, err := httpGet("http://" + n.ProxyAddr() + "/hello/x"); code != 200 || !strings.Contains(body, want) {
						return fmt.Errorf("%s: %d %q %v", n.ID(), code, body, err)
					}
				}
			}
			return nil
		})
	}
	everyReplica("hello from wasm manifest")

	stop := traffic(t, c, "/hello/x")
	updateCLI(t, cli("component", "update", "hello", "--env", "GREETING=hi")...)
	everyReplica("hello from wasm hi")
	ok, bad := stop()
	if len(bad) > 0 || ok == 0 {
		t.Fatalf("during the env update: %d ok, not ok: %v", ok, bad)
	}
	t.Logf("env update reached every replica; %d requests, none failed", ok)

	// A scale change restarts nothing.
	placements := func() map[string]bool {
		ids := map[string]bool{}
		for _, p := range f.Store().Placements("") {
			if p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
				ids[p.Id] = true
			}
		}
		return ids
	}
	before := placements()
	updateCLI(t, cli("component", "update", "hello", "--max", "4")...)
	node.Eventually(t, 10*time.Second, func() error {
		if comp := getComponent(t, f.APIAddr(), "hello"); comp.GetSpec().GetScaleMax() != 4 {
			return fmt.Errorf("max %d", comp.GetSpec().GetScaleMax())
		}
		return nil
	})
	for id := range before {
		if !placements()[id] {
			t.Fatalf("a scale change replaced placement %s", id)
		}
	}

	// The next deploy keeps the user's env and max; get says where each comes from.
	if r := deployCLI(t, cli("deploy", dir, "-m", "again")...); r.code != 0 {
		t.Fatalf("redeploy: %s", r)
	}
	comp := getComponent(t, f.APIAddr(), "hello")
	if comp.GetSpec().GetEnv()["GREETING"] != "hi" || comp.GetSpec().GetScaleMax() != 4 || comp.GetSpec().GetScaleMin() != 3 {
		t.Fatalf("after a redeploy: %v", comp.GetSpec())
	}
	everyReplica("hello from wasm hi")
	get := mustCLI(t, cli("component", "get", "hello")...)
	for _, want := range []string{"GREETING=hi (user)", "min 3 (manifest), max 4 (user)"} {
		if !strings.Contains(get.stdout, want) {
			t.Errorf("component get lacks %q:\n%s", want, get.stdout)
		}
	}
}

// TestNoRaceRolloutConfigChangeFails: a change of env whose new instances all fail their
// readiness check is gated like a deployment: under traffic on every proxy no request
// fails, the old instances keep serving, the change is undone and `v9 component get` says
// why; the next good change rolls and clears it.
func TestNoRaceRolloutConfigChangeFails(t *testing.T) {
	module := versionsModule(t)
	c := node.NewTestCluster(t, 3)
	f := c.Follower(t)
	cli := func(args ...string) []string { return append([]string{"--addr", f.APIAddr()}, args...) }
	if r := deployCLI(t, cli("deploy", versionsDir(t, module, "[env]\nVERSION = \"1\"\n"))...); r.code != 0 {
		t.Fatalf("deploy: %s", r)
	}
	everyProxy := func(want string) {
		t.Helper()
		node.Eventually(t, 60*time.Second, func() error {
			for _, n := range c.Nodes {
				for i := 0; i < 4; i++ {
					if code, body, err := httpGet("http://" + n.ProxyAddr() + "/versions/x"); code != 200 || !strings.Contains(body, want) {
						return fmt.Errorf("%s: %d %q %v", n.ID(), code, body, err)
					}
				}
			}
			return nil
		})
	}
	everyProxy("version 1")

	stop := traffic(t, c, "/versions/x")
	start := time.Now()
	// The update waits for the roll's outcome: the leader undoes the change, and the
	// command fails with the reason.
	r := deployCLI(t, cli("component", "update", "versions", "--env", "BROKEN=1")...)
	if r.code == 0 || !strings.Contains(r.stderr, "the change of versions was undone") || !strings.Contains(r.stderr, "every new instance failed") {
		t.Fatalf("update of a broken env: want a failure with the reason, got %s", r)
	}
	var get cliResult
	node.Eventually(t, 60*time.Second, func() error {
		get = mustCLI(t, cli("component", "get", "versions")...)
		if !strings.Contains(get.stdout, "FAILED: configuration change undone") {
			return fmt.Errorf("not failed yet:\n%s", get.stdout)
		}
		return nil
	})
	took := time.Since(start)
	ok, bad := stop()
	t.Logf("failed env change recorded after %s; meanwhile %d requests answered 200, %d not", took.Round(time.Millisecond), ok, len(bad))
	if len(bad) > 0 || ok == 0 {
		t.Fatalf("during the failed change: %d ok, not ok: %v", ok, bad)
	}
	for _, want := range []string{"every new instance failed", "readiness check failed: GET / answered 500", "previous configuration keep serving"} {
		if !strings.Contains(get.stdout, want) {
			t.Fatalf("component get lacks %q:\n%s", want, get.stdout)
		}
	}
	comp := getComponent(t, f.APIAddr(), "versions")
	if _, ok := comp.GetSpec().GetEnv()["BROKEN"]; ok || comp.GetSpec().GetEnv()["VERSION"] != "1" || comp.GetSpecError() == "" {
		t.Fatalf("after the failed change: env %v, spec_error %q", comp.GetSpec().GetEnv(), comp.GetSpecError())
	}
	// The failed instances are stopped; the old ones serve on.
	node.Eventually(t, 30*time.Second, func() error {
		for _, p := range f.Store().Placements("") {
			if p.ComponentId == comp.GetId() && p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN && p.SpecIndex != comp.GetSpecIndex() {
				return fmt.Errorf("placement %s of the failed change still wanted running", p.Id)
			}
		}
		return nil
	})
	everyProxy("version 1")

	// A good change rolls and clears the failure.
	r = deployCLI(t, cli("component", "update", "versions", "--env", "VERSION=2")...)
	if r.code != 0 || !strings.Contains(r.stderr, "rolled out: ") {
		t.Fatalf("update of a good env: want it rolled out, got %s", r)
	}
	everyProxy("version 2")
	if get := mustCLI(t, cli("component", "get", "versions")...); strings.Contains(get.stdout, "FAILED") {
		t.Fatalf("a good change left the failure shown:\n%s", get.stdout)
	}
}
