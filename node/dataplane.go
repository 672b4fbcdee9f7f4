package node

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
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
			StateDir: filepath.Join(n.cfg.DataDir, "containers"), Logger: n.log,
		})
		if err != nil {
			n.log.Warn("containerd unavailable: this node runs wasm components only", "socket", n.cfg.ContainerdSocket, "err", err)
		} else {
			n.execs[statev1.Runtime_RUNTIME_CONTAINER] = c
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
