package dataplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/proxy"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/artifact"
)

// Cluster is what the data plane asks of the control plane.
type Cluster interface {
	// Apply commits a command through the leader and returns its index.
	Apply(ctx context.Context, cmd *statev1.Command) (uint64, error)
	// Barrier returns once the local replica holds every write committed before the call,
	// as confirmed by the leader.
	Barrier(ctx context.Context) error
	// Heartbeat sends one heartbeat to the leader (within timeout) and returns the leader's
	// applied index from its answer.
	Heartbeat(ctx context.Context, req *clusterv1.HeartbeatRequest, timeout time.Duration) (uint64, error)
}

// Peers reaches other nodes for their artifacts.
type Peers interface {
	// APIAddr is the API address of node id, "" if unknown.
	APIAddr(id string) string
	// OpenArtifact streams the artifact with digest from the node at API address addr.
	OpenArtifact(ctx context.Context, addr, digest string) (io.ReadCloser, error)
}

// LogSink receives the lines of components' logs (logring.Ring is one).
type LogSink interface {
	Append(component, instance, stream, line string)
}

// Config is what one node's data plane needs. Every field but Peers and Logger is required.
type Config struct {
	NodeID    string
	Store     *fsm.Store // the local replica, read only
	Cluster   Cluster
	Peers     Peers
	Artifacts *artifact.Store
	Executors map[statev1.Runtime]v9rt.Executor
	Logs      LogSink
	Logger    *slog.Logger
	// Secrets opens the component secrets of the state for instance environments; nil
	// starts components that have secrets with an error, never without them.
	Secrets SecretOpener

	// HeartbeatInterval is how often the node heartbeats the leader.
	HeartbeatInterval time.Duration
	// Lease is how long exclusive instances keep running without an answered heartbeat.
	Lease time.Duration
	// FenceBudget is how long this node may take, once its lease ran out, to kill its
	// exclusive instances before the leader may place them elsewhere.
	FenceBudget time.Duration
	// ColdStartWait bounds how long a request waits for an on-demand instance to start (a
	// container component at zero, ondemand.go); zero: DefaultColdStartWait.
	ColdStartWait time.Duration
	// ViewPath is the file that keeps the routing view across restarts (see view.go); ""
	// keeps none.
	ViewPath string
	// ReadyTimeout is how long a started instance may take to pass its readiness check
	// (containers retry it while they boot); 0 takes DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// DataPlane is one node's data plane. Build it with New, run its Loops, and Close it.
type DataPlane struct {
	cfg      Config
	log      *slog.Logger
	ctx      context.Context // the node's lifetime: starts and stops in the background use it
	src      source          // the state it reads: the persisted view, then the replica
	runtimes []statev1.Runtime
	removed  atomic.Pointer[string] // why this node serves nothing: it was removed (membership.go)

	rec      *reconciler
	router   *router
	od       onDemand
	fetches  fetchLocks
	lease    lease
	load     *loadReporter
	versions proxy.Versions                      // what each deployment's instances here answered (canary verdicts)
	members  atomic.Pointer[map[netip.Addr]bool] // the IPs of every member's addresses (fence.go)
}

// New builds the data plane. ctx bounds the work it does in the background (starts, stops,
// fetches); its loops take their own context.
func New(ctx context.Context, cfg Config) (*DataPlane, error) {
	if cfg.NodeID == "" || cfg.Store == nil || cfg.Cluster == nil || cfg.Artifacts == nil || cfg.Logs == nil {
		return nil, errors.New("dataplane: node id, store, cluster, artifacts and log sink are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Peers == nil {
		cfg.Peers = noPeers{}
	}
	dp := &DataPlane{cfg: cfg, log: cfg.Logger, ctx: ctx}
	dp.src.live, dp.src.cur = cfg.Store, cfg.Store
	if cfg.ViewPath != "" {
		if v := loadView(cfg.ViewPath, dp.log); v != nil {
			dp.src.known = true
			if v.Index() > cfg.Store.Index() {
				dp.src.view, dp.src.cur = v, v
				dp.log.Info("serving from the routing view until the replica catches up",
					"view_index", v.Index(), "replica_index", cfg.Store.Index(), "components", len(v.Components()))
			}
		}
	}
	for rt := range cfg.Executors {
		dp.runtimes = append(dp.runtimes, rt)
	}
	slices.Sort(dp.runtimes)
	dp.lease.base = time.Now()
	dp.load = &loadReporter{l: proxy.NewLoad(), last: time.Now()}
	dp.router = &router{dp: dp}
	dp.rec = newReconciler(dp, cfg.Executors)
	dp.od.dp = dp
	dp.router.rebuild() // routes from the view (or "starting") before the first request
	return dp, nil
}

// Loops are the data plane's loops; each runs until its context ends.
func (dp *DataPlane) Loops() []func(context.Context) {
	return []func(context.Context){dp.router.loop, dp.rec.loop, dp.heartbeatLoop, dp.gcLoop, dp.replicateLoop, dp.od.loop, dp.fenceLoop, dp.viewLoop}
}

// state is the store the data plane reads now: the routing view persisted at the last run
// until the replica has caught up, then the replica.
func (dp *DataPlane) state() *fsm.Store { return dp.src.store() }

// Router is the proxy's view of where components run.
func (dp *DataPlane) Router() proxy.Router { return dp.router }

// Load counts the requests entering through this node's proxy, for heartbeats.
func (dp *DataPlane) Load() *proxy.Load { return dp.load.l }

// Runtimes lists what this node can run, sorted.
func (dp *DataPlane) Runtimes() []statev1.Runtime { return dp.runtimes }

// Running counts this node's instances of a component that are running, stopping ones
// included: what the exclusivity invariant is about.
func (dp *DataPlane) Running(component string) int { return dp.rec.running(component) }

// StopExclusive stops this node's instances of exclusive components at once, for a graceful
// agent shutdown: containers outlive the agent to be adopted by the next one, but an
// exclusive one must not, since nothing would fence it while the agent is away.
func (dp *DataPlane) StopExclusive(ctx context.Context) { dp.rec.stopExclusive(ctx) }

// Close closes the executors (wasm instances end; containers keep running for the next
// agent to adopt).
func (dp *DataPlane) Close() { dp.rec.closeAll() }

type noPeers struct{}

func (noPeers) APIAddr(string) string { return "" }
func (noPeers) OpenArtifact(context.Context, string, string) (io.ReadCloser, error) {
	return nil, errors.New("no peers")
}

// Executor returns the executor of a runtime, nil if this node has none.
func (dp *DataPlane) Executor(rt statev1.Runtime) v9rt.Executor { return dp.rec.execs[rt] }
