// These tests serve Go-built wasm modules through the proxies, which is too slow under the
// race detector (see dataplane_test.go); `make test` runs them in its second pass.

//go:build !race

package node

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/internal/githubtest"
	"github.com/velocity9/v9/internal/wasmtest"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// helloRepo is a repository tree with the prebuilt hello module and a greeting.
func helloRepo(t *testing.T, greeting string) map[string]string {
	t.Helper()
	return helloRepoTB(t, greeting)
}

func helloRepoTB(t testing.TB, greeting string) map[string]string {
	t.Helper()
	dir := helloDirTB(t, "")
	wasm, err := os.ReadFile(filepath.Join(dir, "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"hello.wasm": string(wasm),
		"v9.toml":    "name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"hello.wasm\"\n[env]\nGREETING = \"" + greeting + "\"\n",
	}
}

// goRepo is a repository whose module v9 compiles (build = "go").
func goRepo(body string) map[string]string {
	return map[string]string{
		"go.mod":  "module hello\n\ngo 1.22\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tfmt.Print(\"Content-Type: text/plain\\n\\n\")\n\tfmt.Println(" + body + ", os.Getenv(\"PATH_INFO\"))\n}\n",
		"v9.toml": "name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n",
	}
}

// neverServes checks, a number of times on every node, that body is not served, once every
// node knows the active deployment's canary is over (during a canary the old version keeps
// a share of the requests).
func neverServes(t *testing.T, nodes []*Node, old string) {
	t.Helper()
	Eventually(t, 30*time.Second, func() error {
		for _, n := range nodes {
			c, err := n.Store().Component("hello")
			if err != nil {
				return err
			}
			if d, err := n.Store().Deployment(c.ActiveDeploymentId); err != nil || d.Canary {
				return fmt.Errorf("%s: deployment %s still in its canary (%v)", n.ID(), c.ActiveDeploymentId, err)
			}
		}
		return nil
	})
	for i := 0; i < 10; i++ {
		for _, n := range nodes {
			if _, body, _, _ := proxyGet(n, "", "/hello/x"); strings.Contains(body, old) {
				t.Fatalf("%s serves the old version again: %q", n.ID(), body)
			}
		}
	}
}

// TestDataPlaneGitHubPushToDeploy is the whole story on three nodes: link a repository,
// its head serves everywhere, pushes roll out with commit statuses, broken pushes fail
// clearly while the running version keeps serving, `build = "go"` compiles on the leader,
// and rollback serves earlier versions everywhere.
func TestDataPlaneGitHubPushToDeploy(t *testing.T) {
	c, gh := newGitHubCluster(t, 3, nil)
	v1 := gh.Commit(testRepo, "main", "v1", helloRepo(t, "v1"))
	createLinked(t, c.Follower(t), "hello")
	if len(gh.Hooks(testRepo)) != 1 {
		t.Fatalf("hooks: %+v", gh.Hooks(testRepo))
	}
	waitServing(t, c.Nodes, "hello from wasm v1 /x")
	waitStatus(t, gh, v1, "success")
	d1 := waitDeployment(t, c.Nodes[1], "hello", v1, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY)

	// A push, delivered to a follower, rolls out everywhere; the old version never serves
	// again.
	start := time.Now()
	v2 := gh.Commit(testRepo, "main", "v2: new greeting", helloRepo(t, "v2"))
	hook := gh.Hooks(testRepo)[0]
	delivery := gh.NewDelivery(&hook, "push", gh.PushPayload(testRepo, "main", v2))
	gh.Send(delivery, webhookURL(c.Follower(t)))
	ds := []*githubtest.Delivery{delivery}
	if ds[0].Status != 202 {
		t.Fatalf("delivery: %+v", ds[0])
	}
	waitServing(t, c.Nodes, "hello from wasm v2 /x")
	t.Logf("push → served by 3 proxies in %s", time.Since(start).Round(time.Millisecond))
	neverServes(t, c.Nodes, "wasm v1")
	if st := waitStatus(t, gh, v2, "success"); !strings.Contains(st.Description, "serving") {
		t.Fatalf("success status: %+v", st)
	}
	d2 := waitDeployment(t, c.Nodes[2], "hello", v2, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY)
	if d2.Pusher != gh.Login || d2.CommitMessage != "v2: new greeting" || d2.Author == "" || d2.DeliveryId != ds[0].ID {
		t.Fatalf("deployment record: %v", d2)
	}

	// Broken pushes fail with a clear message and a failure status; v2 keeps serving.
	noManifest := helloRepo(t, "v3")
	delete(noManifest, "v9.toml")
	badManifest := helloRepo(t, "v3")
	badManifest["v9.toml"] = "colour = \"blue\"\n" + badManifest["v9.toml"]
	notWasm := helloRepo(t, "v3")
	notWasm["hello.wasm"] = "#!/bin/sh\n"
	brokenGo := goRepo(`undefinedGreeting()`)
	for _, bad := range []struct {
		name    string
		files   map[string]string
		tarball []byte
		want    string
	}{
		{name: "no manifest", files: noManifest, want: "v9.toml not found"},
		{name: "bad manifest", files: badManifest, want: "colour"},
		{name: "not wasm", files: notWasm, want: "not a WebAssembly module"},
		{name: "go build error", files: brokenGo, want: "go build"},
		{name: "dotdot tarball", tarball: githubtest.HostileTarball("octo-hello-x", "octo-hello-x/../../../../escaped.txt", "", []byte("owned")), want: "escapes the destination"},
		{name: "escaping symlink", tarball: githubtest.HostileTarball("octo-hello-x", "octo-hello-x/v9.toml", "../../../../../etc/passwd", []byte("owned")), want: "escapes the destination"},
	} {
		var sha string
		if bad.tarball != nil {
			sha, _ = gh.PushTarball(testRepo, "main", bad.name, bad.tarball)
		} else {
			sha, _ = gh.Push(testRepo, "main", bad.name, bad.files)
		}
		d := waitDeployment(t, c.Nodes[0], "hello", sha, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED)
		if !strings.Contains(d.Error, bad.want) {
			t.Fatalf("%s: error %q, want %q", bad.name, d.Error, bad.want)
		}
		if st := waitStatus(t, gh, sha, "failure"); st.Description == "" {
			t.Fatalf("%s: failure status without a reason", bad.name)
		}
		waitServing(t, c.Nodes, "hello from wasm v2 /x")
		if bad.name == "go build error" {
			logs, err := deployClient(c.Nodes[1]).BuildLog(context.Background(), connect.NewRequest(&deployv1.BuildLogRequest{DeploymentId: d.Id}))
			if err != nil || !strings.Contains(logs.Msg.Log, "undefinedGreeting") {
				t.Fatalf("build log of a failed go build: %v\n%s", err, logs.Msg.GetLog())
			}
		}
	}
	filepath.WalkDir(filepath.Dir(c.dir), func(p string, _ fs.DirEntry, _ error) error {
		if filepath.Base(p) == "escaped.txt" {
			t.Fatalf("a hostile tarball wrote %s", p)
		}
		return nil
	})

	// build = "go": compiled on the leader, served everywhere.
	v3, _ := gh.Push(testRepo, "main", "v3: compiled", goRepo(`"compiled by v9"`))
	waitServing(t, c.Nodes, "compiled by v9")
	d3 := waitDeployment(t, c.Nodes[0], "hello", v3, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY)
	logs, err := deployClient(c.Nodes[2]).BuildLog(context.Background(), connect.NewRequest(&deployv1.BuildLogRequest{DeploymentId: d3.Id}))
	if err != nil || !strings.Contains(logs.Msg.Log, "go build") || !strings.Contains(logs.Msg.Log, "ready: artifact sha256:") {
		t.Fatalf("build log: %v\n%s", err, logs.Msg.GetLog())
	}

	// Rollback: to the previous ready deployment (v2), then to v1 by id, everywhere.
	rb, err := deployClient(c.Nodes[1]).Rollback(context.Background(), connect.NewRequest(&deployv1.RollbackRequest{Component: "hello"}))
	if err != nil || rb.Msg.Deployment.Id != d2.Id {
		t.Fatalf("rollback: %v %v", rb, err)
	}
	waitServing(t, c.Nodes, "hello from wasm v2 /x")
	neverServes(t, c.Nodes, "compiled by v9")
	if _, err := deployClient(c.Nodes[0]).Rollback(context.Background(), connect.NewRequest(&deployv1.RollbackRequest{Component: "hello", DeploymentId: d1.Id})); err != nil {
		t.Fatal(err)
	}
	waitServing(t, c.Nodes, "hello from wasm v1 /x")
	// A failed deployment cannot be rolled back to.
	failed := ""
	for _, d := range deploymentsOf(t, c.Nodes[0], "hello") {
		if d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
			failed = d.Id
		}
	}
	if _, err := deployClient(c.Nodes[0]).Rollback(context.Background(), connect.NewRequest(&deployv1.RollbackRequest{Component: "hello", DeploymentId: failed})); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("rollback to a failed deployment: %v", err)
	}
}

// TestDataPlaneGitHubLeaderDiesMidBuild: the leader is killed while it builds; the new
// leader resumes the deployment from the replicated state and it serves.
func TestDataPlaneGitHubLeaderDiesMidBuild(t *testing.T) {
	// A go command that takes its time, so the build is surely running when the leader dies.
	slowGo := filepath.Join(t.TempDir(), "slow-go")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	os.WriteFile(slowGo, []byte("#!/bin/sh\nsleep 3\nexec "+goBin+" \"$@\"\n"), 0o755)
	c, gh := newGitHubCluster(t, 3, func(cfg *Config) { cfg.Build.Go = slowGo })
	v1 := gh.Commit(testRepo, "main", "v1", helloRepo(t, "v1"))
	createLinked(t, c.Leader(t), "hello")
	waitServing(t, c.Nodes, "hello from wasm v1")
	waitStatus(t, gh, v1, "success")

	v2, _ := gh.Push(testRepo, "main", "v2", goRepo(`"survived the leader"`))
	leader := c.Leader(t)
	waitDeployment(t, leader, "hello", v2, statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING)
	dead := indexOf(leader.ID())
	c.Kill(dead)
	// The new leader resumes the build from the replicated state and activates it.
	next := c.Leader(t)
	d := waitDeployment(t, next, "hello", v2, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY)
	// Under load leadership may move again between the survivors: whichever of them leads
	// builds it, never the dead one.
	if d.ArtifactOrigin == "" || d.ArtifactOrigin == c.Nodes[dead].ID() {
		t.Fatalf("built by %q, want a surviving leader (%s was killed)", d.ArtifactOrigin, c.Nodes[dead].ID())
	}
	Eventually(t, 10*time.Second, func() error {
		if cur, _ := next.Store().Component("hello"); cur.GetActiveDeploymentId() != d.Id {
			return fmt.Errorf("active deployment %s, want %s", cur.GetActiveDeploymentId(), d.Id)
		}
		return nil
	})
	// Nothing marks a silent node down yet (its placements would wait for it), so bring the
	// dead node back; then the new version serves everywhere.
	c.Restart(dead)
	waitServing(t, c.Nodes, "survived the leader")
	waitStatus(t, gh, v2, "success")
}

// TestDataPlaneGitHubNewestPushWins: one build per component at a time; pushes that queue
// up behind it are superseded by the newest, which is built next and serves.
func TestDataPlaneGitHubNewestPushWins(t *testing.T) {
	slowGo := filepath.Join(t.TempDir(), "slow-go")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	os.WriteFile(slowGo, []byte("#!/bin/sh\nsleep 2\nexec "+goBin+" \"$@\"\n"), 0o755)
	c, gh := newGitHubCluster(t, 3, func(cfg *Config) { cfg.Build.Go = slowGo })
	gh.Commit(testRepo, "main", "v1", goRepo(`"first"`))
	createLinked(t, c.Leader(t), "hello")
	leader := c.Leader(t)
	first := gh.Head(testRepo, "main")
	waitDeployment(t, leader, "hello", first, statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING)
	queued, _ := gh.Push(testRepo, "main", "queued", goRepo(`"queued"`))
	newest, _ := gh.Push(testRepo, "main", "newest", goRepo(`"newest"`))

	skipped := waitDeployment(t, leader, "hello", queued, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED)
	if !strings.Contains(skipped.Error, "superseded") {
		t.Fatalf("queued push: %q", skipped.Error)
	}
	if st := waitStatus(t, gh, queued, "error"); !strings.Contains(st.Description, "superseded") {
		t.Fatalf("queued push status: %+v", st)
	}
	waitDeployment(t, leader, "hello", first, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY)
	waitDeployment(t, leader, "hello", newest, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY)
	waitServing(t, c.Nodes, "newest")
	waitStatus(t, gh, newest, "success")
}

// TestDataPlaneGitHubTrappingPushFails: a push of a module whose _start traps on every
// request fails its readiness check on every node; the commit status says failure with
// the reason, and the version that served before answers every request meanwhile.
func TestDataPlaneGitHubTrappingPushFails(t *testing.T) {
	c, gh := newGitHubCluster(t, 3, nil)
	v1 := gh.Commit(testRepo, "main", "v1", helloRepo(t, "v1"))
	createLinked(t, c.Follower(t), "hello")
	waitServing(t, c.Nodes, "hello from wasm v1 /x")
	waitStatus(t, gh, v1, "success")

	ctx, cancel := context.WithCancel(context.Background())
	var bad []string
	var ok int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			code, body, _, err := proxyGet(c.Nodes[i%3], "", "/hello/x")
			if err != nil || code != 200 || !strings.Contains(body, "v1") {
				bad = append(bad, fmt.Sprintf("%s: %d %q %v", c.Nodes[i%3].ID(), code, body, err))
			} else {
				ok++
			}
		}
	}()
	trap := helloRepo(t, "v2")
	trap["hello.wasm"] = string(wasmtest.Trap())
	start := time.Now()
	v2, _ := gh.Push(testRepo, "main", "v2: traps", trap)
	st := waitStatus(t, gh, v2, "failure")
	took := time.Since(start)
	cancel()
	<-done
	t.Logf("push of a trapping module → failure commit status in %s (%d requests answered by v1 meanwhile)", took.Round(time.Millisecond), ok)
	if !strings.Contains(st.Description, "readiness check failed") {
		t.Fatalf("failure status: %+v", st)
	}
	if len(bad) > 0 || ok == 0 {
		t.Fatalf("during the failed rollout: %d ok, bad: %v", ok, bad)
	}
}

// TestDataPlaneGitHubReplayedPushIsNotBuilt: a push delivery captured and sent again later,
// its signature still good and its delivery id made up, is recorded but never built: its
// commit is no longer the branch's head, so it is superseded and the newer version keeps
// serving.
func TestDataPlaneGitHubReplayedPushIsNotBuilt(t *testing.T) {
	c, gh, captured := clusterServingV2(t)
	gh.Push(testRepo, "main", "v3", helloRepo(t, "v3"))
	waitServing(t, c.Nodes, "hello from wasm v3 /x")

	replay := resend(t, gh, captured, "replayed")
	leader := c.Leader(t)
	Eventually(t, 60*time.Second, func() error {
		for _, d := range deploymentsOf(t, leader, "hello") {
			if d.DeliveryId != replay.ID {
				continue
			}
			if d.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED || !strings.Contains(d.Error, "superseded") {
				return fmt.Errorf("the replayed push's deployment is %s (%q)", d.Status, d.Error)
			}
			return nil
		}
		return fmt.Errorf("the replayed push was not recorded")
	})
	waitServing(t, c.Nodes, "hello from wasm v3 /x")
}

// TestDataPlaneGitHubStaleDeliveryBuildsTheHead: a delivery that arrives once the branch has
// moved on without a webhook reaching v9 (a commit GitHub never delivered) is superseded,
// and the branch's head is recorded and built instead.
func TestDataPlaneGitHubStaleDeliveryBuildsTheHead(t *testing.T) {
	c, gh, captured := clusterServingV2(t)
	v3 := gh.Commit(testRepo, "main", "v3, never delivered", helloRepo(t, "v3"))
	resend(t, gh, captured, "late")
	waitDeployment(t, c.Leader(t), "hello", v3, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY)
	waitServing(t, c.Nodes, "hello from wasm v3 /x")
}

// clusterServingV2 is a three-node cluster serving a linked repository's second commit,
// pushed through the webhook, and that push's delivery.
func clusterServingV2(t *testing.T) (*TestCluster, *githubtest.Server, *githubtest.Delivery) {
	t.Helper()
	c, gh := newGitHubCluster(t, 3, nil)
	gh.Commit(testRepo, "main", "v1", helloRepo(t, "v1"))
	createLinked(t, c.Follower(t), "hello")
	waitServing(t, c.Nodes, "hello from wasm v1 /x")
	_, ds := gh.Push(testRepo, "main", "v2", helloRepo(t, "v2"))
	waitServing(t, c.Nodes, "hello from wasm v2 /x")
	return c, gh, ds[0]
}

// resend sends a captured delivery again under a made-up delivery id, its body and
// signature as they were, and returns it once v9 accepted it.
func resend(t *testing.T, gh *githubtest.Server, captured *githubtest.Delivery, prefix string) *githubtest.Delivery {
	t.Helper()
	d := *captured
	d.Header = captured.Header.Clone()
	d.ID = prefix + "-" + captured.ID
	d.Header.Set("X-GitHub-Delivery", d.ID)
	gh.Send(&d, d.URL)
	if d.Status != http.StatusAccepted {
		t.Fatalf("%s delivery: %d %s", prefix, d.Status, d.Answer)
	}
	return &d
}
