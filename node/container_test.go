package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/coreos/go-iptables/iptables"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/runtime/container"
	"github.com/velocity9/v9/runtime/container/ociimage"
)

var (
	ctrBinOnce sync.Once
	ctrBin     string
	ctrBinErr  error
)

// containerDir returns a component directory with examples/hello-container built into an
// OCI image archive, its manifest given the extra lines, and message.txt holding msg.
func containerDir(t testing.TB, extra, msg string) string {
	t.Helper()
	ctrBinOnce.Do(func() {
		ctrBin = filepath.Join(os.TempDir(), fmt.Sprintf("v9-hello-ctr-%d", os.Getpid()))
		ctrBinErr = ociimage.GoBuild(ctrBin, "../examples/hello-container")
	})
	if ctrBinErr != nil {
		t.Fatal(ctrBinErr)
	}
	dir := t.TempDir()
	if err := ociimage.WriteArchiveFile(filepath.Join(dir, "image.tar"), ctrBin, "hello", "v9.local/hello-ctr:test"); err != nil {
		t.Fatal(err)
	}
	manifest := "name = \"hello\"\nruntime = \"container\"\n" + extra +
		"\n[container]\nimage = \"v9.local/hello-ctr:test\"\narchive = \"image.tar\"\n"
	for name, body := range map[string]string{"v9.toml": manifest, "message.txt": msg + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runningPlacement returns the one RUNNING placement of the active deployment of hello.
func runningPlacement(c *TestCluster) (*statev1.Placement, error) {
	n := c.Live()[0]
	comp, err := n.Store().Component("hello")
	if err != nil {
		return nil, err
	}
	for _, p := range n.Store().Placements("") {
		if p.DeploymentId == comp.ActiveDeploymentId && p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no running placement of %s", comp.ActiveDeploymentId)
}

// TestContainerServesRestartsAndRollsOver runs a container component on a three-node
// cluster with a real containerd: it answers through every proxy with its files at /app;
// its process crashing gets the placement reported failed and the container restarted; a
// new deployment takes over while a load generator sees no failed request.
func TestContainerServesRestartsAndRollsOver(t *testing.T) {
	needContainerd(t)
	c := NewTestClusterOpts(t, 3, containerOptions())
	for _, n := range c.Nodes {
		Eventually(t, 10*time.Second, func() error {
			nd, err := n.Store().Node(n.ID())
			if err != nil || len(nd.GetRuntimes()) != 2 {
				return fmt.Errorf("%s runtimes: %v %v", n.ID(), nd.GetRuntimes(), err)
			}
			return nil
		})
	}
	// Every member's node ports are fenced from the containers (the members' chain follows
	// the replicated node list).
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() error {
		rules, err := ipt.List("filter", "V9-MBR-"+testNetwork.Bridge)
		if err != nil {
			return err
		}
		for _, n := range c.Nodes {
			for _, a := range []string{n.APIAddr(), n.RaftAddr(), n.ProxyAddr()} {
				host, port, _ := net.SplitHostPort(a)
				if !slices.ContainsFunc(rules, func(r string) bool {
					return strings.Contains(r, "-d "+host+"/32 ") && strings.Contains(r, "--dport "+port+" -j DROP")
				}) {
					return fmt.Errorf("%s of %s is not fenced: %v", a, n.ID(), rules)
				}
			}
		}
		return nil
	})
	first := mustUpload(t, c.Follower(t), containerDir(t, "[env]\nGREETING = \"v1\"\n", "message one"))
	if first.Deployment.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY {
		t.Fatalf("deployment: %v", first.Deployment)
	}
	waitServingBody(t, c.Nodes, "/hello/", "v1", "message one")

	// Files are read-only at /app.
	if code, body, _, err := proxyGet(c.Nodes[0], "", "/hello/write"); err != nil || code != 200 || !strings.Contains(body, "read-only") {
		t.Fatalf("/write: %d %q %v", code, body, err)
	}

	// Crash: the container exits 3; the placement is reported FAILED with the exit status,
	// then RUNNING again, and every proxy serves again.
	var before *statev1.Placement
	Eventually(t, 10*time.Second, func() (err error) {
		before, err = runningPlacement(c) // this node's replica may lag the one that served
		return err
	})
	_, _, _, _ = proxyGet(c.Nodes[0], "", "/hello/crash")
	Eventually(t, 10*time.Second, func() error {
		var p *statev1.Placement
		for _, q := range c.Nodes[0].Store().Placements("") {
			if q.Id == before.Id {
				p = q
			}
		}
		if p == nil {
			return fmt.Errorf("placement %s is gone", before.Id)
		}
		if p.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED || !strings.Contains(p.Reason, "3") {
			return fmt.Errorf("placement %s: %s %q", p.Id, p.Observed, p.Reason)
		}
		return nil
	})
	waitServingBody(t, c.Nodes, "/hello/", "v1")
	var after *statev1.Placement
	Eventually(t, 10*time.Second, func() (err error) {
		if after, err = runningPlacement(c); err == nil && after.Id != before.Id {
			t.Fatalf("after the crash %s runs; want the same placement %s restarted", after.Id, before.Id)
		}
		return err
	})

	// The agent of the node running it crashes and comes back: it adopts the running
	// container (same process, no second instance) instead of starting another.
	_, startedBefore, _, _ := proxyGet(c.Nodes[0], "", "/hello/started")
	owner := indexOf(after.NodeId)
	c.Kill(owner)
	c.Restart(owner)
	c.Leader(t)
	waitServingBody(t, c.Nodes, "/hello/", "v1")
	if _, startedAfter, _, _ := proxyGet(c.Nodes[owner], "", "/hello/started"); startedAfter != startedBefore || startedBefore == "" {
		t.Fatalf("after the agent restart the container started at %q, before at %q: not adopted", startedAfter, startedBefore)
	}
	if k := c.Nodes[owner].dp.Running("hello"); k != 1 {
		t.Fatalf("%s runs %d instances of hello after the restart, want 1", c.Nodes[owner].ID(), k)
	}

	// A new deployment under load: no request fails on the way from v1 to v2.
	var ok, failed atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, _, err := proxyGet(n, "", "/hello/")
				if err != nil || code != 200 {
					failed.Add(1)
					lastErr.Store(fmt.Sprintf("%s: %d %q %v", n.ID(), code, body, err))
					continue
				}
				ok.Add(1)
			}
		}(c.Nodes[i%3])
	}
	// A slow request in flight on the old version when the rollout stops it still completes:
	// a stopping instance leaves the routing table and finishes what it is serving first.
	slow := make(chan string, 1)
	go func() {
		code, body, _, err := proxyGet(c.Nodes[0], "", "/hello/sleep?d=3s")
		slow <- fmt.Sprintf("%d %q %v", code, body, err)
	}()
	second := mustUpload(t, c.Leader(t), containerDir(t, "[env]\nGREETING = \"v2\"\n", "message two"))
	waitServingBody(t, c.Nodes, "/hello/", "v2", "message two")
	// The old placement is stopped and removed.
	Eventually(t, 20*time.Second, func() error {
		for _, p := range c.Nodes[0].Store().Placements("") {
			if p.DeploymentId != second.Deployment.Id {
				return fmt.Errorf("old placement %s still present (%s/%s)", p.Id, p.Desired, p.Observed)
			}
		}
		return nil
	})
	if got := <-slow; got != `200 "slept 3s\n" <nil>` {
		t.Fatalf("a request in flight during the rollout: %s", got)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("during the rollout: %d ok, %d failed; last failure %v", ok.Load(), failed.Load(), lastErr.Load())
	}
	t.Logf("rollout under load: %d requests, none failed", ok.Load())
}

// waitServingBody waits until every node's proxy answers 200 on path with a body holding
// each of want.
func waitServingBody(t testing.TB, nodes []*Node, path string, want ...string) {
	t.Helper()
	// Generous: compiling the Go-built module takes seconds per node on a busy machine.
	Eventually(t, 60*time.Second, func() error {
		for _, n := range nodes {
			code, body, _, err := proxyGet(n, "", path)
			if err != nil || code != 200 {
				return fmt.Errorf("%s proxy: %d %q %v", n.ID(), code, body, err)
			}
			for _, w := range want {
				if !strings.Contains(body, w) {
					return fmt.Errorf("%s proxy: %q lacks %q", n.ID(), body, w)
				}
			}
		}
		return nil
	})
}

// exclusiveTasks counts, per node id, the running tasks of exclusive containers.
func exclusiveTasks(t *testing.T, client *containerd.Client) map[string]int {
	ctx := namespaces.WithNamespace(context.Background(), container.DefaultNamespace)
	cs, err := client.Containers(ctx, fmt.Sprintf(`labels."%s"==true`, container.LabelExclusive))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range cs {
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		if st, err := task.Status(ctx); err == nil && st.Status == containerd.Running {
			labels, _ := c.Labels(ctx)
			out[labels[container.LabelNode]]++
		}
	}
	return out
}

// TestContainerExclusiveFencedWhenAgentDies crashes the agent of the node running an
// exclusive container: the container would outlive its agent, but the node's reaper
// process kills it, so when the leader re-places the component after the TTL it never runs
// twice. Without the reaper the crashed node's container keeps running beside the new one.
func TestContainerExclusiveFencedWhenAgentDies(t *testing.T) {
	needContainerd(t)
	c := NewTestClusterOpts(t, 3, containerOptions())
	client, err := containerd.New(testContainerd)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	up := mustUpload(t, c.Leader(t), containerDir(t, "[scale]\nmax = 1\nexclusive = true\n", "only one"))
	waitServingBody(t, c.Nodes, "/hello/", "only one")
	// Every node copies the artifact in the background, long before a failure in real life.
	Eventually(t, 30*time.Second, func() error {
		for _, n := range c.Nodes {
			if !n.artifacts.Has(up.Deployment.ArtifactDigest) {
				return fmt.Errorf("%s lacks the artifact", n.ID())
			}
		}
		return nil
	})
	var o int
	Eventually(t, 10*time.Second, func() error {
		p, err := runningPlacement(c)
		if err == nil {
			o = indexOf(p.NodeId)
		}
		return err
	})
	if got := exclusiveTasks(t, client); got[c.Nodes[o].ID()] != 1 || len(got) != 1 {
		t.Fatalf("exclusive tasks before the crash: %v", got)
	}
	c.Kill(o) // the agent dies; its containers would live on
	Eventually(t, 5*time.Second, func() error {
		if got := exclusiveTasks(t, client); got[c.Nodes[o].ID()] != 0 {
			return fmt.Errorf("the dead agent's exclusive container still runs: %v", got)
		}
		return nil
	})
	// The leader re-places it after the TTL; at no sample do two run.
	maxSeen := 0
	Eventually(t, DefaultTTL+20*time.Second, func() error {
		got := exclusiveTasks(t, client)
		total := 0
		for _, k := range got {
			total += k
		}
		maxSeen = max(maxSeen, total)
		if total != 1 || got[c.Nodes[o].ID()] != 0 {
			return fmt.Errorf("exclusive tasks: %v", got)
		}
		return nil
	})
	if maxSeen > 1 {
		t.Fatalf("%d exclusive tasks at once", maxSeen)
	}
	waitServingBody(t, others(c, o), "/hello/", "only one")
}

// TestContainerHealthPathGatesTraffic: with a real containerd, a container version whose
// health.path answers 5xx never takes traffic: the version before it answers every request
// meanwhile, and it is failed with the status it answered; a version whose health.path
// answers 200 takes over.
func TestContainerHealthPathGatesTraffic(t *testing.T) {
	needContainerd(t)
	opts := containerOptions()
	opts.Liveness.ReadyTimeout = 3 * time.Second // a sick version is failed after this
	c := NewTestClusterOpts(t, 1, opts)
	n := c.Nodes[0]
	Eventually(t, 10*time.Second, func() error {
		if nd, err := n.Store().Node(n.ID()); err != nil || len(nd.GetRuntimes()) != 2 {
			return fmt.Errorf("runtimes: %v %v", nd.GetRuntimes(), err)
		}
		return nil
	})
	mustUpload(t, n, containerDir(t, "[health]\npath = \"/started\"\n[env]\nGREETING = \"v1\"\n", "one"))
	waitServingBody(t, c.Nodes, "/hello/", "v1")

	var answered atomic.Int64
	var wrong atomic.Pointer[string]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			code, body, _, err := proxyGet(n, "", "/hello/")
			if err != nil || code != 200 || !strings.Contains(body, "v1") {
				s := fmt.Sprintf("%d %q %v", code, body, err)
				wrong.CompareAndSwap(nil, &s)
			}
			answered.Add(1)
		}
	}()
	// /dial to a closed port answers 502: the health check of this version never passes.
	sick := mustUpload(t, n, containerDir(t, "[health]\npath = \"/dial?addr=127.0.0.1:1\"\n[env]\nGREETING = \"v2\"\n", "two"))
	Eventually(t, 30*time.Second, func() error {
		d, err := n.Store().Deployment(sick.Deployment.Id)
		if err != nil || d.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
			return fmt.Errorf("sick deployment not failed yet: %v %v", d.GetStatus(), err)
		}
		if !strings.Contains(d.Error, "readiness check failed: GET /dial?addr=127.0.0.1:1 answered 502") {
			t.Fatalf("sick deployment failed for another reason: %s", d.Error)
		}
		return nil
	})
	cancel()
	<-done
	if w := wrong.Load(); w != nil {
		t.Fatalf("while the sick version started, of %d requests one answered %s", answered.Load(), *w)
	}
	if answered.Load() == 0 {
		t.Fatal("no request answered while the sick version started")
	}
	t.Logf("sick version failed; %d requests meanwhile, all answered by v1", answered.Load())

	// A health path that answers 200: the new version takes over.
	mustUpload(t, n, containerDir(t, "[health]\npath = \"/started\"\n[env]\nGREETING = \"v3\"\n", "three"))
	waitServingBody(t, c.Nodes, "/hello/", "v3")
}
