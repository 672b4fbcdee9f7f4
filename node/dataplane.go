package node

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/logring"
	"github.com/velocity9/v9/proxy"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/artifact"
	"github.com/velocity9/v9/runtime/container"
	"github.com/velocity9/v9/runtime/wasm"
)

// openDataPlane opens the artifact store and the executors, and builds the proxy's router,
// the log ring and the metrics.
func (n *Node) openDataPlane() error {
	var err error
	n.artifacts, err = artifact.Open(filepath.Join(n.cfg.DataDir, "artifacts"), func(r io.Reader, dest string) error {
		return deploy.Unpack(r, dest, deploy.DefaultLimits)
	})
	if err != nil {
		return fmt.Errorf("open artifact store: %w", err)
	}
	n.logs = logring.New(n.cfg.LogLines)
	n.metrics = prometheus.NewRegistry()
	n.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.stats = proxy.NewStats(n.metrics)
	n.load = &loadReporter{l: proxy.NewLoad(), last: time.Now()}
	n.execs = map[statev1.Runtime]v9rt.Executor{}

	w, err := wasm.New(wasm.Config{CacheDir: n.cfg.WasmCacheDir, Logger: n.log})
	if err != nil {
		return fmt.Errorf("start wasm executor: %w", err)
	}
	n.execs[statev1.Runtime_RUNTIME_WASM] = w
	if n.cfg.ContainerdSocket != "" {
		c, err := container.New(container.Config{
			Socket: n.cfg.ContainerdSocket, NodeID: n.cfg.ID,
			StateDir: filepath.Join(n.cfg.DataDir, "containers"), Network: n.cfg.ContainerNetwork,
			Logger: n.log,
		})
		if err != nil {
			n.log.Warn("container executor unavailable: this node runs wasm components only", "socket", n.cfg.ContainerdSocket, "err", err)
		} else {
			n.execs[statev1.Runtime_RUNTIME_CONTAINER] = c
			if err := n.startReaper(); err != nil {
				return err
			}
		}
	} else {
		n.log.Info("no containerd socket configured: this node runs wasm components only")
	}
	for rt := range n.execs {
		n.runtimes = append(n.runtimes, rt)
	}
	slices.Sort(n.runtimes)
	n.rec = newReconciler(n, n.execs)
	n.router = &router{n: n}
	return nil
}

// Runtimes lists what this node can run.
func (n *Node) Runtimes() []statev1.Runtime { return n.runtimes }

// startReaper starts the process that fences this node's exclusive containers when the
// agent dies: it holds the read end of a pipe whose write end only this process has, so
// the kernel closes it however the agent ends (container.Reap).
func (n *Node) startReaper() error {
	if n.cfg.ReaperCommand == nil {
		n.log.Warn("no reaper: exclusive containers would outlive a crashed agent unfenced")
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("reaper pipe: %w", err)
	}
	cmd := n.cfg.ReaperCommand(n.cfg.ContainerdSocket, container.DefaultNamespace, n.cfg.ID)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // not killed with the agent's terminal
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start reaper: %w", err)
	}
	r.Close()
	n.reaper = w
	go func() {
		if err := cmd.Wait(); err != nil {
			n.log.Warn("reaper ended", "err", err)
		}
	}()
	return nil
}

// closeReaper tells the reaper that the agent is gone.
func (n *Node) closeReaper() {
	if n.reaper != nil {
		n.reaper.Close()
	}
}
