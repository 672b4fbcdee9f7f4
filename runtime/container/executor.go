package container

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/defaults"
	"github.com/containerd/containerd/namespaces"

	"github.com/velocity9/v9/runtime"
)

// Defaults for Config's zero values and for a Spec without a memory limit.
const (
	DefaultNamespace    = "v9"
	DefaultStopGrace    = 10 * time.Second
	DefaultReadyTimeout = 30 * time.Second
	DefaultMemoryBytes  = 256 << 20
	// Port is the PORT every container listens on, in its own network namespace.
	Port = 8080
)

// Labels v9 keeps on its containers.
const (
	LabelPlacement  = "v9.placement"
	LabelNode       = "v9.node"
	LabelComponent  = "v9.component"
	LabelDeployment = "v9.deployment"
	LabelDigest     = "v9.digest"
	// LabelExclusive marks an exclusive component's container: Reap kills these.
	LabelExclusive = "v9.exclusive"
	// LabelNetNS is the path of the container's network namespace: an adopted container
	// keeps it (and its address in it), and removing the container tears it down.
	LabelNetNS = "v9.netns"
	// labelArtifact, on an image imported from an archive, is the digest of the artifact it
	// came from: the next start of the same artifact skips the import.
	labelArtifact = "v9.artifact"
)

// Config configures an Executor.
type Config struct {
	// Socket is containerd's gRPC socket (such as /run/containerd/containerd.sock). Required.
	Socket string
	// Namespace is the containerd namespace of v9's containers and images. Default "v9".
	Namespace string
	// NodeID labels this node's containers, so that nodes sharing one containerd never list,
	// adopt or stop each other's. Required.
	NodeID string
	// StateDir holds per-instance files: the FIFOs of the containers' stdout and stderr,
	// which must outlive an agent restart for Adopt to reattach the logs. Default
	// containerd's /run/containerd/fifo.
	StateDir string
	// Snapshotter is the containerd snapshotter for root filesystems. Default: overlayfs when
	// containerd has it loaded, else native.
	Snapshotter string
	// CompatSyscalls keeps the 32-bit architectures (i386, x32) that containerd's default
	// seccomp profile allows beside the native one. Off by default: the filter then holds
	// the native architecture only, which makes runc build it about three times faster (a
	// sixth of a cold start) and refuses the 32-bit syscall entry points, at the price of
	// 32-bit binaries in images.
	CompatSyscalls bool
	// RuntimeBinary is the OCI runtime the runc shim runs (its BinaryName): "runc" or
	// "crun", a name on the shim's PATH or a path. Default: crun where it can run, else
	// the shim's own, runc (ociruntime.go).
	RuntimeBinary string
	// NoStandby turns standby containers off (standby.go): every start then creates its
	// container from scratch, and nothing is kept at rest.
	NoStandby bool
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL. Default 10s.
	StopGrace time.Duration
	// ReadyTimeout bounds how long Start waits for the port to answer. Default 30s.
	ReadyTimeout time.Duration
	// Network is the containers' network: a namespace each on a bridge v9 owns, fenced
	// off the host and each other (see Network). Without the CNI plugins and iptables
	// New fails: containers never fall back to the host's network.
	Network Network
	// Logger receives the executor's own logs (not the containers'). Default slog.Default().
	Logger *slog.Logger
}

// Executor runs container instances with containerd. It implements runtime.Executor and
// runtime.Adopter.
type Executor struct {
	cfg         Config
	client      *containerd.Client
	snapshotter string
	fifoDir     string
	log         *slog.Logger
	transport   *http.Transport
	net         *network

	importMu sync.Mutex // one import at a time: concurrent starts of one artifact import once

	// closing ends with Close: starts under way are abandoned, and Close waits in starts
	// for them to remove what they made while the connection to containerd is still open.
	closing    context.Context
	closeStart context.CancelFunc
	starts     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	instances map[string]*instance  // by placement id
	starting  map[string]bool       // placement ids with a Start under way
	images    map[string]readyImage // by image name
	standbys  map[string]*standby   // by component (standby.go)
	preparing map[string]bool       // components with a standby being prepared
	// keepStandby is the last PruneStandby's keep: whether a component's deployment, at
	// a spec_index, may have a standby (nil: any may).
	keepStandby func(component, deploymentID string, specIndex uint64) bool
}

var (
	_ runtime.Executor = (*Executor)(nil)
	_ runtime.Adopter  = (*Executor)(nil)
)

// New connects to containerd at cfg.Socket and checks that it answers. A node without
// containerd gets an error here and runs wasm only.
func New(cfg Config) (*Executor, error) {
	if cfg.Socket == "" {
		return nil, errors.New("container executor: no containerd socket")
	}
	if cfg.NodeID == "" {
		return nil, errors.New("container executor: no node id")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	runtimeWhy := "configured"
	if cfg.RuntimeBinary == "" {
		cfg.RuntimeBinary, runtimeWhy = defaultRuntime()
	}
	if _, err := os.Stat(cfg.Socket); err != nil {
		return nil, fmt.Errorf("containerd socket: %w", err)
	}
	client, err := containerd.New(cfg.Socket, containerd.WithDefaultNamespace(cfg.Namespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.Socket, err)
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), cfg.Namespace), 10*time.Second)
	defer cancel()
	version, err := client.Version(ctx)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("containerd at %s does not answer: %w", cfg.Socket, err)
	}
	snapshotter, err := pickSnapshotter(ctx, client, cfg.Snapshotter)
	if err != nil {
		client.Close()
		return nil, err
	}
	fifoDir := defaults.DefaultFIFODir
	if cfg.StateDir != "" {
		fifoDir = filepath.Join(cfg.StateDir, "fifo")
	}
	if err := os.MkdirAll(fifoDir, 0o700); err != nil {
		client.Close()
		return nil, fmt.Errorf("container executor: %w", err)
	}
	nw, err := newNetwork(cfg.Network, cfg.NodeID, cfg.Logger)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("container executor: %w", err)
	}
	closing, closeStart := context.WithCancel(context.Background())
	e := &Executor{
		cfg:         cfg,
		client:      client,
		snapshotter: snapshotter,
		fifoDir:     fifoDir,
		net:         nw,
		log:         cfg.Logger.With("runtime", "container"),
		transport: &http.Transport{
			Proxy:                 nil, // never an HTTP proxy from the environment for the bridge
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 0, // a request's own deadline (Spec.Timeout) bounds it
			ExpectContinueTimeout: time.Second,
		},
		instances: make(map[string]*instance),
		starting:  make(map[string]bool),
		closing:   closing, closeStart: closeStart,
		images:   make(map[string]readyImage),
		standbys: make(map[string]*standby), preparing: make(map[string]bool),
	}
	if err := e.removeLeftStandbys(ctx); err != nil {
		closeStart()
		client.Close()
		return nil, fmt.Errorf("container executor: %w", err)
	}
	if err := e.collectNetNS(ctx); err != nil {
		closeStart()
		client.Close()
		return nil, fmt.Errorf("container executor: %w", err)
	}
	nw.refill()
	e.log.Info("containerd executor ready", "containerd", version.Version, "socket", cfg.Socket,
		"namespace", cfg.Namespace, "snapshotter", snapshotter, "node", cfg.NodeID,
		"oci_runtime", cmp.Or(cfg.RuntimeBinary, "runc"), "oci_runtime_why", runtimeWhy,
		"bridge", nw.cfg.Bridge, "subnet", nw.cfg.Subnet)
	return e, nil
}

// pickSnapshotter returns want when containerd has it loaded, or when want is empty,
// overlayfs or else native.
func pickSnapshotter(ctx context.Context, client *containerd.Client, want string) (string, error) {
	resp, err := client.IntrospectionService().Plugins(ctx, []string{"type==io.containerd.snapshotter.v1"})
	if err != nil {
		return "", fmt.Errorf("list containerd snapshotters: %w", err)
	}
	var loaded []string
	for _, p := range resp.Plugins {
		if p.InitErr == nil {
			loaded = append(loaded, p.ID)
		}
	}
	candidates := []string{"overlayfs", "native"}
	if want != "" {
		candidates = []string{want}
	}
	for _, c := range candidates {
		if slices.Contains(loaded, c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("containerd has none of the snapshotters %v loaded (it has %v)", candidates, loaded)
}

// Runtime returns "container".
func (e *Executor) Runtime() string { return "container" }

// Snapshotter returns the snapshotter the executor uses.
func (e *Executor) Snapshotter() string { return e.snapshotter }

// Close detaches from the running instances and closes the connection to containerd. The
// containers keep running, for the next agent to adopt; their instances' Done channels do
// not close.
func (e *Executor) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	// A start cut short removes its container and network namespace: wait for that, or
	// they would outlive the agent with nobody to adopt or remove them.
	e.closeStart()
	e.starts.Wait()
	e.closeStandbys()
	e.mu.Lock()
	insts := make([]*instance, 0, len(e.instances))
	for _, inst := range e.instances {
		insts = append(insts, inst)
	}
	e.instances = make(map[string]*instance)
	e.mu.Unlock()
	for _, inst := range insts {
		inst.detach()
	}
	e.net.close()
	e.transport.CloseIdleConnections()
	return e.client.Close()
}

// ctx gives ctx the executor's namespace.
func (e *Executor) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, e.cfg.Namespace)
}

// containerID names the container of placement id on this node.
func (e *Executor) containerID(id string) string { return containerID(e.cfg.NodeID, id) }

// collectNetNS tears down this node's network namespaces that none of its containers
// names: pooled ones, or ones of a start cut short, left by an agent that died.
func (e *Executor) collectNetNS(ctx context.Context) error {
	cs, err := e.client.Containers(ctx, `labels."`+LabelNode+`"==`+e.cfg.NodeID)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	inUse := map[string]bool{}
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.ID(), err)
		}
		if info.Labels[LabelNode] == e.cfg.NodeID && info.Labels[LabelNetNS] != "" {
			inUse[info.Labels[LabelNetNS]] = true
		}
	}
	e.net.gc(ctx, inUse)
	return nil
}
