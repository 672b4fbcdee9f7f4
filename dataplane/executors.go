package dataplane

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/internal/loglimit"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/artifact"
	"github.com/velocity9/v9/runtime/container"
	"github.com/velocity9/v9/runtime/wasm"
)

// ExecutorConfig says which executors a node runs.
type ExecutorConfig struct {
	NodeID string
	// DataDir holds the containers' state.
	DataDir string
	// WasmCacheDir holds compiled wasm modules.
	WasmCacheDir string
	// WasmMaxRunning bounds the wasm guests executing at once (wasm.Config.MaxRunning).
	WasmMaxRunning int
	// ContainerdSocket, when set, adds the container executor (if containerd answers).
	ContainerdSocket string
	// ContainerNetwork is the containers' fenced network (container.Network; zero: its
	// defaults). Without CNI or iptables the container executor is not added.
	ContainerNetwork container.Network
	// ContainerRuntime is the OCI runtime of the runc shim (container.Config.RuntimeBinary).
	ContainerRuntime string
	// ContainerNoStandby keeps no standby containers at rest (container.Config.NoStandby).
	ContainerNoStandby bool
	// ReaperCommand builds the command of the process that fences this node's exclusive
	// containers if the agent dies (see container.Reap); nil: no reaper.
	ReaperCommand func(socket, namespace, nodeID string) *exec.Cmd
	Logger        *slog.Logger
	// FailLogs limits the node log's lines about failed wasm requests (nil: the executor's
	// default).
	FailLogs *loglimit.Limiter
}

// OpenArtifacts opens the node's artifact store under dir; artifacts unpack with the
// deploy package's safe extraction.
func OpenArtifacts(dir string) (*artifact.Store, error) {
	s, err := artifact.Open(dir, func(r io.Reader, dest string) error {
		return deploy.Unpack(r, dest, deploy.DefaultLimits)
	})
	if err != nil {
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	return s, nil
}

// Reaper is the write end of the reaper's pipe: closing it (or the agent dying) makes the
// reaper kill this node's exclusive containers.
type Reaper struct{ w *os.File }

// Close tells the reaper that the agent is gone. A nil Reaper does nothing.
func (r *Reaper) Close() {
	if r != nil && r.w != nil {
		r.w.Close()
	}
}

// OpenExecutors starts the wasm executor, and the container executor when containerd
// answers, with its reaper.
func OpenExecutors(cfg ExecutorConfig) (map[statev1.Runtime]v9rt.Executor, *Reaper, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	execs := map[statev1.Runtime]v9rt.Executor{}
	w, err := wasm.New(wasm.Config{CacheDir: cfg.WasmCacheDir, MaxRunning: cfg.WasmMaxRunning, Logger: log, FailLogs: cfg.FailLogs})
	if err != nil {
		return nil, nil, fmt.Errorf("start wasm executor: %w", err)
	}
	execs[statev1.Runtime_RUNTIME_WASM] = w
	var reaper *Reaper
	if cfg.ContainerdSocket != "" {
		c, err := container.New(container.Config{
			Socket: cfg.ContainerdSocket, NodeID: cfg.NodeID, Network: cfg.ContainerNetwork,
			RuntimeBinary: cfg.ContainerRuntime, NoStandby: cfg.ContainerNoStandby,
			StateDir: filepath.Join(cfg.DataDir, "containers"), Logger: log,
		})
		if err != nil {
			log.Warn("container executor unavailable: this node runs wasm components only", "socket", cfg.ContainerdSocket, "err", err)
		} else {
			execs[statev1.Runtime_RUNTIME_CONTAINER] = c
			if reaper, err = startReaper(cfg, log); err != nil {
				_ = w.Close()
				return nil, nil, err
			}
		}
	} else {
		log.Info("no containerd socket configured: this node runs wasm components only")
	}
	return execs, reaper, nil
}

// startReaper starts the process that fences this node's exclusive containers when the
// agent dies: it holds the read end of a pipe whose write end only this process has, so
// the kernel closes it however the agent ends (container.Reap).
func startReaper(cfg ExecutorConfig, log *slog.Logger) (*Reaper, error) {
	if cfg.ReaperCommand == nil {
		log.Warn("no reaper: exclusive containers would outlive a crashed agent unfenced")
		return nil, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("reaper pipe: %w", err)
	}
	cmd := cfg.ReaperCommand(cfg.ContainerdSocket, container.DefaultNamespace, cfg.NodeID)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // not killed with the agent's terminal
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	r.Close()
	go func() {
		if err := cmd.Wait(); err != nil {
			log.Warn("reaper ended", "err", err)
		}
	}()
	return &Reaper{w: w}, nil
}
