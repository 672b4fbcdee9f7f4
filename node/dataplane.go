package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/velocity9/v9/dataplane"
	"github.com/velocity9/v9/internal/loglimit"
	"github.com/velocity9/v9/logring"
	"github.com/velocity9/v9/observe"
	"github.com/velocity9/v9/proxy"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// openDataPlane opens the artifact store and the executors and builds the data plane, the
// log ring and the metrics.
func (n *Node) openDataPlane() error {
	var err error
	if n.artifacts, err = dataplane.OpenArtifacts(filepath.Join(n.cfg.DataDir, "artifacts")); err != nil {
		return err
	}
	n.logs = logring.New(n.cfg.LogLines)
	n.metrics = prometheus.NewRegistry()
	n.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Request history for the console, on disk across restarts (observe owns it).
	rollups, err := observe.OpenRollups(filepath.Join(n.cfg.DataDir, "stats", "rollups.json"), nil)
	if err != nil {
		n.log.Warn("stats history", "err", err)
	}
	n.goLoop(func(ctx context.Context) { rollups.Run(ctx, n.log.Warn) })
	n.stats = proxy.NewStats(n.metrics, rollups)
	n.logDrops = loglimit.NewDropped(n.metrics)
	execs, reaper, err := dataplane.OpenExecutors(dataplane.ExecutorConfig{
		NodeID: n.cfg.ID, DataDir: n.cfg.DataDir, WasmCacheDir: n.cfg.WasmCacheDir,
		ContainerdSocket: n.cfg.ContainerdSocket, ContainerNetwork: n.cfg.ContainerNetwork,
		ContainerRuntime: n.cfg.ContainerRuntime, ContainerNoStandby: n.cfg.ContainerNoStandby, WasmMaxRunning: n.cfg.WasmMaxRunning,
		ReaperCommand: n.cfg.ReaperCommand, Logger: n.log, FailLogs: n.logDrops.Limiter("wasm", loglimit.DefaultEvery),
	})
	if err != nil {
		return err
	}
	n.reaper = reaper
	n.dp, err = dataplane.New(n.ctx, dataplane.Config{
		NodeID: n.cfg.ID, Store: n.fsm.Store, Cluster: dpHost{n}, Peers: dpHost{n},
		Artifacts: n.artifacts, Executors: execs, Logs: n.logs, Logger: n.log, Secrets: n,
		HeartbeatInterval: n.cfg.Liveness.HeartbeatInterval, Lease: n.cfg.Liveness.Lease,
		FenceBudget: n.cfg.Liveness.fenceBudget(n.cfg.Raft.LeaderLeaseTimeout),
		ViewPath:    filepath.Join(n.cfg.DataDir, "routing-view"), ReadyTimeout: n.cfg.Liveness.ReadyTimeout,
	})
	if err != nil {
		return err
	}
	n.runtimes = n.dp.Runtimes()
	n.observe = observe.New(observe.Config{NodeID: n.cfg.ID, Store: n.fsm.Store, Logs: n.logs, Rollups: rollups, Peers: observePeers{n},
		Stopping: n.ctx.Done()})
	return nil
}

// Runtimes lists what this node can run.
func (n *Node) Runtimes() []statev1.Runtime { return n.runtimes }

// dpHost is what the data plane gets of the node: writes through the leader, a consistent
// barrier, heartbeats and peers' artifacts.
type dpHost struct{ n *Node }

var (
	_ dataplane.Cluster = dpHost{}
	_ dataplane.Peers   = dpHost{}
)

func (h dpHost) Apply(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	return h.n.Apply(ctx, cmd)
}

func (h dpHost) Barrier(ctx context.Context) error { return h.n.ConsistentBarrier(ctx) }

func (h dpHost) APIAddr(id string) string { return replicaPeers(h).APIAddrOf(id) }

// Heartbeat sends one heartbeat to the leader (to this node's own liveness table when it
// leads) and returns the leader's applied index from the answer.
func (h dpHost) Heartbeat(ctx context.Context, req *clusterv1.HeartbeatRequest, timeout time.Duration) (uint64, error) {
	n := h.n
	if n.IsLeader() {
		resp, err := n.HeartbeatAsLeader(ctx, req)
		return resp.GetIndex(), err
	}
	addr, err := n.LeaderAPI()
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := n.peers.get(addr).internal.Heartbeat(cctx, connect.NewRequest(req))
	if err != nil {
		return 0, err
	}
	return resp.Msg.Index, nil
}

// OpenArtifact streams an artifact from the peer at addr.
func (h dpHost) OpenArtifact(ctx context.Context, addr, digest string) (io.ReadCloser, error) {
	stream, err := h.n.peers.get(addr).artifacts.Fetch(ctx, connect.NewRequest(&deployv1.FetchRequest{Digest: digest}))
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		for stream.Receive() {
			if _, err := pw.Write(stream.Msg().Chunk); err != nil {
				return
			}
		}
		pw.CloseWithError(stream.Err()) // nil → EOF
	}()
	return &fetchReader{PipeReader: pr, close: stream.Close}, nil
}

// fetchReader ends the pipe, then the stream, when the reader is done.
type fetchReader struct {
	*io.PipeReader
	close func() error
}

func (f *fetchReader) Close() error {
	f.PipeReader.CloseWithError(errors.New("fetch ended"))
	return f.close()
}

// OpenArtifact serves a stored artifact to a peer.
func (n *Node) OpenArtifact(digest string) (io.ReadCloser, int64, error) {
	if !n.artifacts.Has(digest) {
		return nil, 0, connect.NewError(connect.CodeNotFound, fmt.Errorf("artifact %s is not stored on %s", digest, n.cfg.ID))
	}
	return n.artifacts.Get(digest)
}
