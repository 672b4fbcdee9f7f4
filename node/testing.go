package node

import (
	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/internal/testkit"
	"github.com/velocity9/v9/leader"
	"github.com/velocity9/v9/sched"

	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCluster runs real nodes in one process: real Raft on disk under t.TempDir(), real
// listeners on 127.0.0.1, fast Raft timeouts. It is for tests only.
type TestCluster struct {
	Nodes []*Node // index i holds node "n<i+1>"; a killed node stays in place until restarted

	t    testing.TB
	dir  string
	opts TestOptions
	cfgs []Config
	mu   sync.Mutex

	tlsOnce sync.Once
}

// TestCanaryWindowMax caps a test cluster's canary windows unless TestOptions.Liveness sets
// CanaryWindowMax: a redeploy in a test waits this long for its canary, not 30s.
const TestCanaryWindowMax = time.Second

// TestOptions tunes NewTestClusterOpts.
type TestOptions struct {
	// Raft is the Raft timing; zero means TestRaftConfig.
	Raft RaftConfig
	// Liveness is the heartbeat timing; zero values take the defaults.
	Liveness LivenessConfig
	// Autoscale is the autoscaling policy; zero values take the defaults.
	Autoscale sched.Policy
	// ContainerdSocket is the containerd every node runs container components with; empty
	// means the nodes run wasm only.
	ContainerdSocket string
	// Configure, when set, adjusts each node's Config before it starts (GitHub settings,
	// build options).
	Configure func(*Config)
	// NoTLS runs the nodes without TLS between them (InsecureNoTLS), for comparisons.
	NoTLS bool
	// Controllers, when set, gives leader controllers to run on node id beside its own,
	// started and stopped with them.
	Controllers func(id string) []leader.Controller
}

// TestRaftConfig is the fast timing tests use.
// They are short enough for quick elections and long enough that a busy 2-core CI machine
// running -race does not depose leaders by accident (CI saw 150–260 ms stalls in the
// leader's contact with its followers under load; a 150 ms lease stepped leaders down).
var TestRaftConfig = RaftConfig{
	HeartbeatTimeout:   400 * time.Millisecond,
	ElectionTimeout:    400 * time.Millisecond,
	LeaderLeaseTimeout: 300 * time.Millisecond,
	CommitTimeout:      5 * time.Millisecond,
}

// NewTestCluster starts n nodes that bootstrap together and waits for a leader.
func NewTestCluster(t testing.TB, n int) *TestCluster {
	return NewTestClusterWith(t, n, TestRaftConfig)
}

// NewTestClusterWith is NewTestCluster with chosen Raft settings.
func NewTestClusterWith(t testing.TB, n int, rc RaftConfig) *TestCluster {
	t.Helper()
	return NewTestClusterOpts(t, n, TestOptions{Raft: rc})
}

// NewTestClusterConfig is NewTestCluster with a function that adjusts every node's Config
// (GitHub settings, build options) before the node starts.
func NewTestClusterConfig(t testing.TB, n int, configure func(*Config)) *TestCluster {
	t.Helper()
	return NewTestClusterOpts(t, n, TestOptions{Configure: configure})
}

// NewTestClusterOpts is NewTestCluster with chosen options.
func NewTestClusterOpts(t testing.TB, n int, opts TestOptions) *TestCluster {
	t.Helper()
	if opts.Raft == (RaftConfig{}) {
		opts.Raft = TestRaftConfig
	}
	c := &TestCluster{t: t, dir: t.TempDir(), opts: opts}
	t.Cleanup(c.stopAll)
	for i := 0; i < n; i++ {
		cfg := c.config(i)
		cfg.BootstrapExpect = n
		if i > 0 {
			cfg.Join = []string{c.Nodes[0].APIAddr()}
		}
		c.start(cfg)
	}
	c.Leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[0].Bootstrap(ctx, TestToken); err != nil {
		t.Fatalf("bootstrap the ACL: %v", err)
	}
	// Every node registered before the test places anything: a component created first
	// would be placed on the nodes registered so far only.
	Eventually(t, 30*time.Second, func() error {
		for _, nd := range c.Nodes {
			if _, err := c.Leader(t).Store().Node(nd.ID()); err != nil {
				return fmt.Errorf("%s not registered yet: %v", nd.ID(), err)
			}
		}
		return nil
	})
	return c
}

// TestToken is the admin token every test cluster is bootstrapped with.
const TestToken = "v9s_test-cluster-admin-token-0123456789abcdef"

// TestHTTPClient is an HTTP client that sends TestToken with every request.
var TestHTTPClient = TokenHTTPClient(TestToken)

// TokenHTTPClient returns an HTTP client that sends the token with every request.
var TokenHTTPClient = testkit.TokenHTTPClient

// sharedWasmCache lets every test node in this process reuse compiled modules: compiling a
// Go-built module takes seconds under -race.
var sharedWasmCache = sync.OnceValue(func() string {
	dir, err := os.MkdirTemp("", "v9-test-wasm-cache-")
	if err != nil {
		return ""
	}
	return dir
})

func (c *TestCluster) config(i int) Config {
	id := fmt.Sprintf("n%d", i+1)
	cfg := Config{
		WasmCacheDir:     sharedWasmCache(),
		ID:               id,
		DataDir:          filepath.Join(c.dir, id),
		APIAddr:          "127.0.0.1:0",
		ProxyAddr:        "127.0.0.1:0",
		RaftAddr:         "127.0.0.1:0",
		Raft:             c.opts.Raft,
		ContainerdSocket: c.opts.ContainerdSocket,
		Liveness:         c.opts.Liveness,
		Autoscale:        c.opts.Autoscale,
		Logger:           slog.New(&testkit.LogHandler{T: c.t, Prefix: id, Level: slog.LevelInfo}),
	}
	if cfg.Liveness.CanaryWindowMax == 0 {
		cfg.Liveness.CanaryWindowMax = TestCanaryWindowMax
	}
	if c.opts.NoTLS {
		cfg.InsecureNoTLS = true
	} else {
		cfg.TLS = c.NodeTLS(id)
	}
	if c.opts.Controllers != nil {
		cfg.extraControllers = c.opts.Controllers(id)
	}
	if c.opts.Configure != nil {
		c.opts.Configure(&cfg)
	}
	return cfg
}

// TLSDir holds the test cluster's CA and node certificates (made on first use).
func (c *TestCluster) TLSDir() string {
	c.t.Helper()
	dir := filepath.Join(c.dir, "tls")
	c.tlsOnce.Do(func() {
		if err := auth.CreateCA(dir); err != nil {
			c.t.Fatalf("create test CA: %v", err)
		}
	})
	return dir
}

// NodeTLS makes (or loads) node id's certificate of the test cluster's CA.
func (c *TestCluster) NodeTLS(id string) *auth.NodeTLS {
	c.t.Helper()
	dir := c.TLSDir()
	files := auth.TLSDirFiles(dir, id)
	if _, err := os.Stat(files.Cert); err != nil {
		if err := auth.CreateNodeCert(dir, id, auth.NodeCertOptions{}); err != nil {
			c.t.Fatalf("create node certificate: %v", err)
		}
	}
	nt, err := auth.LoadNodeTLS(files)
	if err != nil {
		c.t.Fatalf("load node certificate: %v", err)
	}
	return nt
}

func (c *TestCluster) start(cfg Config) *Node {
	c.t.Helper()
	n, err := Start(context.Background(), cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.ID, err)
	}
	// Restarts reuse the bound ports: Raft keeps addresses in its configuration.
	cfg.APIAddr, cfg.ProxyAddr, cfg.RaftAddr = n.APIAddr(), n.ProxyAddr(), n.RaftAddr()
	c.mu.Lock()
	defer c.mu.Unlock()
	i := indexOf(cfg.ID)
	for len(c.Nodes) <= i {
		c.Nodes = append(c.Nodes, nil)
		c.cfgs = append(c.cfgs, Config{})
	}
	c.Nodes[i], c.cfgs[i] = n, cfg
	if _, bench := c.t.(*testing.B); !bench { // benchmarks count the store's wake-ups
		n.feedTestEvents()
	}
	return n
}

func indexOf(id string) int {
	var i int
	fmt.Sscanf(strings.TrimPrefix(id, "n"), "%d", &i)
	return i - 1
}

// AddNode starts one more node that joins the cluster through the given node's API.
func (c *TestCluster) AddNode(via *Node) *Node {
	c.t.Helper()
	cfg := c.config(len(c.Nodes))
	cfg.Join = []string{via.APIAddr()}
	return c.start(cfg)
}

// Live returns the nodes that are running.
func (c *TestCluster) Live() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, n := range c.Nodes {
		if n != nil && n.ctx.Err() == nil {
			out = append(out, n)
		}
	}
	return out
}

// Leader waits until exactly one live node leads and returns it.
func (c *TestCluster) Leader(t testing.TB) *Node {
	t.Helper()
	var leader *Node
	Eventually(t, 10*time.Second, func() error {
		leader = nil
		for _, n := range c.Live() {
			if n.IsLeader() {
				if leader != nil {
					return fmt.Errorf("two leaders: %s and %s", leader.ID(), n.ID())
				}
				leader = n
			}
		}
		if leader == nil {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return leader
}

// Follower returns a live node that does not lead.
func (c *TestCluster) Follower(t testing.TB) *Node {
	t.Helper()
	l := c.Leader(t)
	for _, n := range c.Live() {
		if n != l {
			return n
		}
	}
	t.Fatal("no follower")
	return nil
}

// Kill stops node i abruptly, as a crash would; its data stays on disk.
func (c *TestCluster) Kill(i int) { c.Nodes[i].kill() }

// Stop shuts node i down gracefully.
func (c *TestCluster) Stop(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[i].Shutdown(ctx); err != nil {
		c.t.Logf("shutdown %s: %v", c.Nodes[i].ID(), err)
	}
}

// Restart starts node i again on the same ports and data dir.
func (c *TestCluster) Restart(i int) *Node {
	c.t.Helper()
	cfg := c.cfgs[i]
	return c.start(cfg)
}

// Partition cuts node i off from every other node (Raft and node-to-node API); Heal
// reconnects it. Clients on the test's side still reach its API.
func (c *TestCluster) Partition(i int) { c.Nodes[i].faults.SetPartitioned(true) }

// Heal undoes Partition.
func (c *TestCluster) Heal(i int) { c.Nodes[i].faults.SetPartitioned(false) }

func (c *TestCluster) stopAll() {
	for _, n := range c.Live() {
		n.kill()
	}
}

// RaftSnapshot makes the node write a Raft snapshot of its state now (tests read the file).
func (n *Node) RaftSnapshot() error { return n.raft.r.Snapshot().Error() }
