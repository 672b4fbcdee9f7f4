// Compiles wasm (a tiny hand-assembled module): runs without -race, as dataplane_test.go.

//go:build !race

package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/dataplane"
	"github.com/velocity9/v9/fsm"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/runtime/wasm/wasmtest"
)

// tinyHelloDir is a component "hello" whose module (hand-assembled, compiled in
// milliseconds even on a loaded machine) answers "hello from wasm".
func tinyHelloDir(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	mod := wasmtest.TinyCGI("Content-Type: text/plain\n\nhello from wasm\n")
	manifest := "name = \"hello\"\nruntime = \"wasm\"\n" + extra + "\n[wasm]\nmodule = \"hello.wasm\"\n"
	for name, b := range map[string][]byte{"hello.wasm": mod, "v9.toml": []byte(manifest)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// msgHandler records the messages logged through it that contain a word, and passes every
// record on.
type msgHandler struct {
	slog.Handler
	word string
	hits *atomic.Int64
}

func (h msgHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.word) {
		h.hits.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h msgHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return msgHandler{h.Handler.WithAttrs(as), h.word, h.hits}
}

func (h msgHandler) WithGroup(g string) slog.Handler {
	return msgHandler{h.Handler.WithGroup(g), h.word, h.hits}
}

// startTraffic sends a steady stream of requests to every node's proxy (one worker each,
// a pause between requests: not a flood on 2 cores).
func startTraffic(nodes []*Node) *loadGen {
	return startLoadPath(nodes, len(nodes), "/hello/x", 5*time.Millisecond)
}

func runningOn(n *Node, members ...string) int {
	k := 0
	for _, p := range n.Store().Placements("") {
		for _, m := range members {
			if p.NodeId == m && p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN && p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
				k++
			}
		}
	}
	return k
}

// Adding a node, removing a live one and replacing one (same id, new disk) while requests
// run against the other nodes' proxies: none fails. The removed node, still running, says
// in its log that it was removed, stops its instances and refuses requests with a 503.
func TestDataPlaneMembershipChangesUnderTraffic(t *testing.T) {
	removedLogs := map[string]*atomic.Int64{}
	var mu sync.Mutex
	c := NewTestClusterConfig(t, 3, func(cfg *Config) {
		k := &atomic.Int64{}
		mu.Lock()
		removedLogs[cfg.ID] = k
		mu.Unlock()
		cfg.Logger = slog.New(msgHandler{cfg.Logger.Handler(), "was removed from the cluster", k})
	})
	deployOnAllThree(t, c)
	steady := []*Node{c.Nodes[0], c.Nodes[1]}
	remove := func(id string) {
		t.Helper()
		cli := clusterv1connect.NewClusterServiceClient(TestHTTPClient, "http://"+c.Nodes[0].APIAddr())
		tried := false
		// Retried when leadership moves mid-write (a loaded machine); NotFound once it
		// went through.
		Eventually(t, 30*time.Second, func() error {
			_, err := cli.RemovePeer(context.Background(), connect.NewRequest(&clusterv1.RemovePeerRequest{NodeId: id}))
			if err == nil || (tried && connect.CodeOf(err) == connect.CodeNotFound) {
				return nil
			}
			tried = true
			return fmt.Errorf("remove %s: %w", id, err)
		})
	}

	// Add n4.
	tr := startTraffic(steady)
	n4 := c.AddNode(c.Nodes[0])
	waitServing(t, []*Node{n4}, "hello from wasm")
	tr.end(t, "add n4")

	// Remove n3, alive.
	tr = startTraffic(steady)
	n3 := c.Nodes[2]
	start := time.Now()
	remove("n3")
	Eventually(t, 60*time.Second, func() error {
		if k := runningOn(c.Nodes[0], "n1", "n2", "n4"); k != 3 {
			return fmt.Errorf("%d of 3 replicas running on the members", k)
		}
		return nil
	})
	t.Logf("remove-peer of live n3 → its replicas running elsewhere: %v", time.Since(start).Round(time.Millisecond))
	Eventually(t, 30*time.Second, func() error {
		if k := n3.dp.Running("hello"); k != 0 {
			return fmt.Errorf("removed n3 still runs %d instances", k)
		}
		code, body, _, err := proxyGet(n3, "", "/hello/x")
		if err != nil || code != 503 || !strings.Contains(body, "removed from the cluster") {
			return fmt.Errorf("removed n3's proxy: %d %q %v", code, body, err)
		}
		return nil
	})
	if removedLogs["n3"].Load() == 0 {
		t.Fatal("n3 did not log that it was removed")
	}
	tr.end(t, "remove live n3")

	// Replace n4: it dies, is removed, and comes back with the same id on a new disk.
	tr = startTraffic(steady)
	c.Kill(3)
	remove("n4")
	cfg := c.cfgs[3]
	cfg.DataDir = filepath.Join(t.TempDir(), "n4-new")
	cfg.Join = []string{c.Nodes[0].APIAddr()}
	n4 = c.start(cfg)
	waitServing(t, []*Node{n4}, "hello from wasm")
	Eventually(t, 30*time.Second, func() error {
		if _, err := c.Nodes[0].Store().Node("n4"); err != nil {
			return fmt.Errorf("new n4 not registered: %v", err)
		}
		return nil
	})
	tr.end(t, "replace n4")
}

// A node restarted while its two peers are down serves its components from its persisted
// routing view within a second, with no quorum; then the others restart too (the whole
// cluster restarted) and no proxy ever answers 404 for the component.
func TestDataPlaneLoneRestartServesFromView(t *testing.T) {
	c := NewTestCluster(t, 3)
	deployOnAllThree(t, c)
	// The view holds the running placements once written at or after the last change of the
	// tables it keeps.
	Eventually(t, 20*time.Second, func() error {
		for _, n := range c.Nodes {
			want := n.Store().TableIndex(fsm.TableComponents, fsm.TableDeployments, fsm.TableNodes, fsm.TablePlacements)
			got, err := dataplane.ViewIndex(filepath.Join(n.DataDir(), "routing-view"))
			if err != nil || got < want {
				return fmt.Errorf("%s: routing view at index %d, routes changed at %d (%v)", n.ID(), got, want, err)
			}
		}
		return nil
	})
	for i := range c.Nodes {
		c.Kill(i)
	}

	// first200 polls a node's proxy until it answers 200; any 404 fails the test.
	first200 := func(n *Node, since time.Time) time.Duration {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			code, body, _, err := proxyGet(n, "", "/hello/x")
			if code == 404 {
				t.Fatalf("%s answered 404 after its restart: %q", n.ID(), body)
			}
			if err == nil && code == 200 {
				return time.Since(since)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("%s never answered 200 after its restart", n.ID())
		return 0
	}

	start := time.Now()
	lone := c.Restart(0)
	d := first200(lone, start)
	t.Logf("lone restart (peers down, no quorum) → first 200: %v", d.Round(time.Millisecond))
	if d > 3*time.Second { // the goal is 1 s; leave room for a loaded CI machine
		t.Fatalf("lone restart served after %v", d)
	}
	for i := 0; i < 20; i++ {
		if code, body, _, err := proxyGet(lone, "", "/hello/x"); err != nil || code != 200 {
			t.Fatalf("request %d without quorum: %d %q %v", i, code, body, err)
		}
	}

	for _, i := range []int{1, 2} {
		start := time.Now()
		n := c.Restart(i)
		t.Logf("%s restarted → first 200: %v", n.ID(), first200(n, start).Round(time.Millisecond))
	}
	c.Leader(t)
	waitServing(t, c.Nodes, "hello from wasm")
}

// Removing the leader: it hands leadership over first and leaves cleanly (its Raft keeps
// running, its API answers, its proxy refuses with a 503); restarted with --join, it is
// added again and serves.
func TestRemoveLeaderThenRejoin(t *testing.T) {
	c := NewTestCluster(t, 3)
	old := c.Leader(t)
	i := indexOf(old.ID())
	cli := clusterv1connect.NewClusterServiceClient(TestHTTPClient, "http://"+old.APIAddr())
	if _, err := cli.RemovePeer(context.Background(), connect.NewRequest(&clusterv1.RemovePeerRequest{NodeId: old.ID()})); err != nil {
		t.Fatalf("leader leaves: %v", err)
	}
	rest := others(c, i)
	Eventually(t, 20*time.Second, func() error {
		l := c.Leader(t)
		if l == old {
			return fmt.Errorf("%s still leads", old.ID())
		}
		for _, n := range rest {
			if m, _ := n.membership(); !m {
				return fmt.Errorf("%s is not a member", n.ID())
			}
		}
		if m, known := old.membership(); m || !known {
			return fmt.Errorf("old leader: member %v, known %v", m, known)
		}
		code, body, _, err := proxyGet(old, "", "/hello/x")
		if err != nil || code != 503 || !strings.Contains(body, "removed from the cluster") {
			return fmt.Errorf("removed leader's proxy: %d %q %v", code, body, err)
		}
		return nil
	})
	if st, err := cli.Status(context.Background(), connect.NewRequest(&clusterv1.StatusRequest{})); err != nil || st.Msg.RaftState == "Shutdown" {
		t.Fatalf("removed leader's API: %v %v", st, err)
	}

	// Restarted with --join, it is a member again.
	c.Kill(i)
	cfg := c.cfgs[i]
	cfg.Join = []string{rest[0].APIAddr()}
	cfg.BootstrapExpect = 0
	back := c.start(cfg)
	Eventually(t, 30*time.Second, func() error {
		if m, _ := back.membership(); !m {
			return fmt.Errorf("%s not a member again", back.ID())
		}
		if _, err := rest[0].Store().Node(back.ID()); err != nil {
			return fmt.Errorf("%s not registered again: %v", back.ID(), err)
		}
		if code, body, _, err := proxyGet(back, "", "/nope/x"); err != nil || code != 404 {
			return fmt.Errorf("rejoined node's proxy: %d %q %v", code, body, err)
		}
		return nil
	})
}

// deployOnAllThree uploads the tiny hello with three replicas and waits until every node
// serves it and n1 sees it running on n1, n2 and n3.
func deployOnAllThree(t *testing.T, c *TestCluster) {
	t.Helper()
	mustUpload(t, c.Leader(t), tinyHelloDir(t, "[scale]\nmin = 3\nmax = 3\n"))
	waitServing(t, c.Nodes, "hello from wasm")
	Eventually(t, 60*time.Second, func() error {
		if k := runningOn(c.Nodes[0], "n1", "n2", "n3"); k != 3 {
			return fmt.Errorf("%d of 3 replicas running", k)
		}
		return nil
	})
}
