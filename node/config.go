package node

import (
	"cmp"
	"os/exec"

	"github.com/velocity9/v9/sched"

	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/ghub"
	"github.com/velocity9/v9/internal/bounds"
	"github.com/velocity9/v9/leader"
	"github.com/velocity9/v9/proxy"
	"github.com/velocity9/v9/runtime/container"
)

// Config is everything one node needs. The CLI fills it from flags; tests fill it directly.
type Config struct {
	// ID names the node in Raft and in the state. Defaults to the host name.
	ID string
	// DataDir holds the Raft log, stable store and snapshots. Required.
	DataDir string

	// Listen addresses ("host:port"; port 0 picks a free one). Each must be advertisable
	// (not 0.0.0.0) unless the matching Advertise address is set.
	APIAddr   string
	ProxyAddr string
	RaftAddr  string
	// Advertise addresses other nodes dial; default to the bound listen addresses.
	APIAdvertise  string
	RaftAdvertise string

	// BootstrapExpect is the number of voters to wait for before bootstrapping a new cluster.
	// 0 means "never bootstrap: join an existing cluster through Join".
	BootstrapExpect int
	// Join lists API addresses of other nodes, tried until one answers.
	Join []string

	Raft     RaftConfig
	Liveness LivenessConfig
	// Autoscale tunes how the leader moves replicas between scale.min and scale.max.
	Autoscale sched.Policy

	// Domain routes <component>.<Domain> by host on the proxy port (default "localhost").
	Domain string
	// ContainerdSocket is the containerd to run container components with. Empty: this node
	// runs wasm only and says so in its capabilities.
	ContainerdSocket string
	// ContainerNetwork is the containers' network: a namespace each on a bridge, fenced off
	// the host and each other. Zero: container.Network's defaults. Without the CNI plugins
	// or iptables, this node runs wasm only; containers never get the host's network.
	ContainerNetwork container.Network
	// ContainerRuntime is the OCI runtime the runc shim runs, such as runc or crun; empty:
	// crun where it can run, else runc (runtime/container/ociruntime.go).
	ContainerRuntime string
	// ContainerNoStandby keeps no standby containers at rest (container.Config.NoStandby).
	ContainerNoStandby bool
	// ReaperCommand, when set, builds the command of the process that fences this node's
	// exclusive containers if the agent dies (see container.Reap): cmd/v9 runs its own
	// binary; without it, exclusive containers outlive a crashed agent unfenced.
	ReaperCommand func(socket, namespace, nodeID string) *exec.Cmd
	// WasmMaxRunning bounds the wasm guests executing at once on this node (0: GOMAXPROCS-1,
	// at least 1), so that guests never hold every P from Raft (wasm.Config.MaxRunning).
	WasmMaxRunning int
	// WasmCacheDir holds compiled wasm modules (default DataDir/wasm-cache). Nodes on one
	// machine may share it.
	WasmCacheDir string
	// LogLines is how many log lines each component keeps on this node (default 2000).
	LogLines int
	// Doors bound the API, proxy and Raft listeners (connections, timeouts, headers, body
	// deadlines); zero fields take bounds.DefaultDoors. Requests bounds each proxied
	// request (headers, default body, per-component queue); zero: proxy.DefaultBounds.
	Doors    bounds.Doors
	Requests proxy.Bounds

	// GitHub is the token and API URL for push-to-deploy; without a token, components
	// cannot be linked to repositories.
	GitHub ghub.Config
	// SignIn is how users sign in with GitHub (the console's web flow, `v9 login`'s device
	// flow); no client id: they sign in with tokens only.
	SignIn auth.GitHubConfig
	// Build configures `build = "go"` compiles on the leader. Build.Env defaults to this
	// process's environment; empty cache dirs leave the go command's own (shared) caches.
	Build deploy.BuildOptions

	Logger *slog.Logger

	// TLS holds this node's certificate, key and cluster CA (reloaded from disk when they
	// change). Raft and every call between nodes then use mutual TLS, and the internal
	// procedures answer only callers with a node certificate of that CA. Without it the
	// node refuses to start unless InsecureNoTLS is set.
	TLS *auth.NodeTLS
	// InsecureNoTLS runs without TLS between nodes: anyone who reaches the API or Raft port
	// can act as a node. For throwaway local clusters and benchmarks only.
	InsecureNoTLS bool

	// extraControllers are leader controllers tests add to the node's own (TestOptions).
	extraControllers []leader.Controller
}

// RaftConfig tunes hashicorp/raft. Zero values take the LAN defaults below.
type RaftConfig struct {
	HeartbeatTimeout   time.Duration // default 500ms; followers start an election after this silence
	ElectionTimeout    time.Duration // default 500ms
	LeaderLeaseTimeout time.Duration // default 250ms
	CommitTimeout      time.Duration // default 20ms
	SnapshotThreshold  uint64        // log entries between snapshots, default 8192
	SnapshotInterval   time.Duration // how often to check the threshold, default 30s
	TrailingLogs       uint64        // entries kept after a snapshot, default 10240
	NoSync             bool          // skip fsync on the log store: tests only, never production
}

// LivenessConfig tunes node heartbeats (the placement protocol's TTL and LEASE, tla/).
type LivenessConfig struct {
	// HeartbeatInterval is how often a node heartbeats the leader. Default 250ms.
	HeartbeatInterval time.Duration
	// Lease is how long a node keeps its exclusive instances running without reaching the
	// leader. Default 1.5s.
	Lease time.Duration
	// TTL is the silence after which the leader marks a node down and replaces its
	// placements. It must exceed Lease plus the Raft leader lease, so that a cut-off node
	// has stopped its exclusive instances before any replacement starts. Default 3s.
	TTL time.Duration
	// RolloutDeadline is how long a new deployment may take to get its instances running
	// before it is failed and the previous version kept. Default 2m.
	RolloutDeadline time.Duration
	// CanaryWindowMax, when set, shortens every canary window (rollout.window) to at most
	// this: test clusters use it so that a redeploy does not wait 30s. 0 keeps the spec's.
	CanaryWindowMax time.Duration
	// ReadyTimeout is how long a new container instance may take to pass its readiness
	// check (health.path) before it is failed. 0: dataplane's default (30s).
	ReadyTimeout time.Duration
}

// minFenceBudget is the least time a node whose lease ran out may take to kill its
// exclusive instances before the leader may re-place them.
const minFenceBudget = 200 * time.Millisecond

// fenceBudget is the time left, after a node's lease runs out, before the leader's TTL can:
// the TTL less the lease, a deposed leader's Raft lease and the two heartbeat intervals a
// node may take to notice (a heartbeat blocks for up to two). Half of it is given to
// killing an instance, half kept as margin for clock rate differences.
func (l LivenessConfig) fenceBudget(leaderLease time.Duration) time.Duration {
	return l.TTL - l.Lease - leaderLease - 2*l.HeartbeatInterval
}

// Liveness defaults: a dead node's placements are replaced about 3s after its last
// heartbeat (Nomad's default heartbeat grace is about 20s).
const (
	DefaultHeartbeatInterval = 250 * time.Millisecond
	DefaultLease             = 1500 * time.Millisecond
	DefaultTTL               = 3 * time.Second
	DefaultRolloutDeadline   = 2 * time.Minute
)

// Defaults for a LAN cluster: a leader is detected dead within 0.5-1s and replaced within
// about a second more (etcd uses 100ms heartbeats and a 1s election timeout; hashicorp/raft
// sends heartbeats at HeartbeatTimeout/10).
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
	DefaultCommitTimeout      = 20 * time.Millisecond
)

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return errors.New("config: data dir is required")
	}
	if c.ID == "" {
		return errors.New("config: node id is required")
	}
	if c.APIAddr == "" {
		return errors.New("config: api address is required")
	}
	if c.RaftAddr == "" {
		return errors.New("config: raft address is required")
	}
	if err := c.SignIn.Check(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.TLS == nil && !c.InsecureNoTLS {
		return errors.New("config: no TLS certificates for this node: give --tls-dir (create them with `v9 tls ca create` and `v9 tls cert create --node ID`), or --insecure-no-tls for a throwaway cluster")
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("config: bootstrap-expect %d is negative", c.BootstrapExpect)
	}
	for _, a := range append([]string{c.APIAddr, c.RaftAddr}, c.Join...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("config: address %q: %w", a, err)
		}
	}
	c.Doors = c.Doors.WithDefaults()
	r := &c.Raft
	r.HeartbeatTimeout = cmp.Or(r.HeartbeatTimeout, DefaultHeartbeatTimeout)
	r.ElectionTimeout = cmp.Or(r.ElectionTimeout, DefaultElectionTimeout)
	r.LeaderLeaseTimeout = cmp.Or(r.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	r.CommitTimeout = cmp.Or(r.CommitTimeout, DefaultCommitTimeout)
	r.SnapshotThreshold = cmp.Or(r.SnapshotThreshold, 8192)
	r.SnapshotInterval = cmp.Or(r.SnapshotInterval, 30*time.Second)
	r.TrailingLogs = cmp.Or(r.TrailingLogs, 10240)
	l := &c.Liveness
	l.HeartbeatInterval = cmp.Or(l.HeartbeatInterval, DefaultHeartbeatInterval)
	l.Lease = cmp.Or(l.Lease, DefaultLease)
	l.TTL = cmp.Or(l.TTL, DefaultTTL)
	l.RolloutDeadline = cmp.Or(l.RolloutDeadline, DefaultRolloutDeadline)
	if l.Lease < 2*l.HeartbeatInterval {
		return fmt.Errorf("config: lease %s must be at least two heartbeat intervals (%s)", l.Lease, l.HeartbeatInterval)
	}
	if l.fenceBudget(r.LeaderLeaseTimeout) < minFenceBudget {
		return fmt.Errorf("config: node TTL %s must exceed the lease %s, the Raft leader lease %s, two heartbeat intervals (%s) and %s to kill an instance",
			l.TTL, l.Lease, r.LeaderLeaseTimeout, 2*l.HeartbeatInterval, minFenceBudget)
	}
	c.Domain = cmp.Or(c.Domain, "localhost")
	c.WasmCacheDir = cmp.Or(c.WasmCacheDir, filepath.Join(c.DataDir, "wasm-cache"))
	c.LogLines = cmp.Or(c.LogLines, 2000)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.Build.Env == nil {
		c.Build.Env = os.Environ()
	}
	return nil
}
