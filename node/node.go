package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/dataplane"
	"github.com/velocity9/v9/deployments"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/ghub"
	"github.com/velocity9/v9/internal/bounds"
	"github.com/velocity9/v9/internal/loglimit"
	"github.com/velocity9/v9/keyring"
	"github.com/velocity9/v9/leader"
	"github.com/velocity9/v9/logring"
	"github.com/velocity9/v9/observe"
	"github.com/velocity9/v9/proxy"
	"github.com/velocity9/v9/replica"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/rpc/server"
	"github.com/velocity9/v9/runtime/artifact"
	"github.com/velocity9/v9/transport"
)

// Node is one running v9 node.
type Node struct {
	cfg    Config
	log    *slog.Logger
	fsm    *fsm.FSM
	raft   *raftParts
	faults *transport.Faults
	authz  *auth.Authorizer
	peers  *peerClients
	disc   discovery

	keys      *keyring.Cluster     // the cluster keyring's root keys this node holds (secrets.go)
	dp        *dataplane.DataPlane // this node's instances, routing, artifacts and lease
	artifacts *artifact.Store      // shared with dp
	logs      *logring.Ring
	observe   *observe.Service // logs and stats across the cluster
	stats     *proxy.Stats
	metrics   *prometheus.Registry
	logDrops  *loglimit.Dropped // counts log lines held back (v9_log_lines_dropped_total)
	runtimes  []statev1.Runtime
	owner     *leader.Owner    // starts and stops the leader controllers
	live      *leader.Liveness // the leader's view of the nodes' heartbeats
	scheduler *leader.Scheduler
	reaper    *dataplane.Reaper // fences exclusive containers if the agent dies
	gh        *ghub.Service     // linking, webhooks, builds, polling, commit statuses

	// The write and read paths over the Raft replica (Apply, ReadIndex, ConsistentBarrier...).
	*replica.Replica

	// The deployment procedures (upload, history, watch, rollback, build logs).
	*deployments.Service

	apiLn, proxyLn   net.Listener
	apiSrv, proxySrv *http.Server
	apiAdvertise     string

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// Start opens the node's state, binds its listeners, serves its API and proxy, and starts
// bootstrap or join in the background. It returns once the node is serving.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.ID), fsm: fsm.New(), faults: &transport.Faults{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.peers = newPeerClients(n.faults, cfg.TLS)
	n.Replica = &replica.Replica{Store: n.fsm.Store, Peers: replicaPeers{n}}
	n.cfg.SignIn.Bindings = n.fsm.Store // the GitHub logins bound to user ids
	n.authz = &auth.Authorizer{Tokens: n.fsm.Store, CatchUp: (&auth.CatchUp{Barrier: n.ConsistentBarrier, MinGap: auth.CatchUpGap}).Do, Insecure: cfg.TLS == nil, Users: &n.cfg.SignIn,
		Changes: n.fsm.Store}
	n.disc.known = map[string]peer{}
	n.setupLeadership()

	var err error
	fail := func(err error) (*Node, error) {
		n.kill()
		return nil, err
	}
	if n.apiLn, err = n.listen(cfg.APIAddr, n.cfg.Doors.API); err != nil {
		return fail(fmt.Errorf("listen api: %w", err))
	}
	n.apiAdvertise = n.apiLn.Addr().String()
	if cfg.APIAdvertise != "" {
		n.apiAdvertise = cfg.APIAdvertise
	} else if n.apiLn.Addr().(*net.TCPAddr).IP.IsUnspecified() {
		return fail(fmt.Errorf("api address %s is not advertisable: set --api-advertise", cfg.APIAddr))
	}
	if cfg.ProxyAddr != "" {
		if n.proxyLn, err = n.listen(cfg.ProxyAddr, n.cfg.Doors.Proxy); err != nil {
			return fail(fmt.Errorf("listen proxy: %w", err))
		}
	}
	if n.raft, err = openRaft(&n.cfg, n.fsm, n.faults); err != nil {
		return fail(err)
	}
	n.Replica.Raft = n.raft.r
	n.fsm.AnswerWhile(n.Replica.Waiting) // results nobody here waits for go to nobody
	if err := n.openKeyring(); err != nil {
		return fail(err)
	}
	if err := n.openDataPlane(); err != nil {
		return fail(err)
	}
	n.openGitHub()
	n.Service = deployments.New(deployments.Config{
		NodeID: cfg.ID, State: n.fsm.Store, Writer: n, Artifacts: n.artifacts, Pin: n.dp.Pin, Logs: n.logs, Logger: n.log,
	})
	if !n.raft.hasState && cfg.BootstrapExpect == 0 && len(cfg.Join) == 0 {
		return fail(errors.New("this node has no cluster state yet: give --bootstrap-expect to start a new cluster or --join to join one"))
	}

	mux := server.NewMux(n, n.authz)
	mux.Handle("/metrics", n.authz.RequireHTTP(auth.RoleViewer, promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{})))
	mux.HandleFunc(ghub.WebhookPath, n.gh.ServeWebhook)
	if cfg.TLS != nil {
		mux.Handle(auth.JoinPathPrefix, n.joinIssuer().Handler())
		mux.Handle(server.KeyringPath+"/", server.KeyringHandler(n, n.authz))
		mux.Handle(server.KeyringPath, server.KeyringHandler(n, n.authz))
	}
	(&auth.WebSignIn{GitHub: &n.cfg.SignIn, W: n, Tokens: n.fsm.Store, Log: n.log, Grants: n,
		Logs: n.logDrops.Limiter("signin", loglimit.DefaultEvery)}).Register(mux)
	// Browsers' cross-origin writes are refused (a signed-in console's cookie must not
	// serve another site); the CLI, nodes and GitHub's webhooks send no Origin and pass.
	n.apiSrv = n.httpServer(n.cfg.Doors.API, auth.PeerIdentity(http.NewCrossOriginProtection().Handler(mux)))
	if cfg.TLS != nil {
		// Users speak plain HTTP (or TLS); nodes speak mutual TLS, on the same port.
		n.serve(n.apiSrv, transport.NewSniffListener(n.apiLn, cfg.TLS.ServerConfig(false, "h2", "http/1.1")), "api")
	} else {
		n.serve(n.apiSrv, n.apiLn, "api")
	}
	if n.proxyLn != nil {
		n.proxySrv = n.httpServer(n.cfg.Doors.Proxy, proxy.New(proxy.Config{
			NodeID: cfg.ID, Domain: cfg.Domain, Router: n.dp.Router(), Stats: n.stats, Load: n.dp.Load(), Logger: n.log,
			Access: func(component, line string) { n.logs.Append(component, "proxy", "access", line) },
			Bounds: cfg.Requests, Logs: n.logDrops.Limiter("proxy", loglimit.DefaultEvery),
			// The console's session and v9's tokens never reach a component.
			Private: proxy.Private{Cookies: []string{auth.SessionCookie, auth.PlainSessionCookie}, BearerPrefix: auth.SecretPrefix},
			Peer:    n.dp.IsMember,
		}))
		n.serve(n.proxySrv, n.proxyLn, "proxy")
	}
	if !n.raft.hasState {
		n.goLoop(n.bootstrapOrJoin)
	}
	n.goLoop(n.registerSelf)
	n.goLoop(n.watchMembership)
	for _, loop := range n.dp.Loops() {
		n.goLoop(loop)
	}
	n.goLoop(n.runLeadership)
	n.goLoop(n.tokenUseLoop)
	n.log.Info("node started", "api", n.APIAddr(), "proxy", n.ProxyAddr(), "raft", n.RaftAddr(),
		"data_dir", cfg.DataDir, "existing_state", n.raft.hasState)
	return n, nil
}

// listen opens a listener within its door's connection bounds; those over them get a 429
// or 503 with Retry-After.
func (n *Node) listen(addr string, door bounds.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return door.Listen(ln, bounds.RejectHTTP(door.RetryAfter)), nil
}

// httpServer serves h within its door's bounds; the server's own error lines (a failed TLS
// handshake, anyone can cause one) go to the node's log at a bounded rate.
func (n *Node) httpServer(door bounds.Config, h http.Handler) *http.Server {
	srv := door.Server(h)
	srv.ErrorLog = n.logDrops.Limiter("http", loglimit.DefaultEvery).StdLogger(n.log, "http server")
	return srv
}

func (n *Node) serve(srv *http.Server, ln net.Listener, name string) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("server stopped", "server", name, "err", err)
		}
	}()
}

func (n *Node) goLoop(f func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
}

// ID is the node's Raft server id.
func (n *Node) ID() string { return n.cfg.ID }

// APIAddr is the advertised API address.
func (n *Node) APIAddr() string { return n.apiAdvertise }

// ProxyAddr is the bound proxy address, "" when the node runs no proxy.
func (n *Node) ProxyAddr() string {
	if n.proxyLn == nil {
		return ""
	}
	return n.proxyLn.Addr().String()
}

// RaftAddr is the advertised Raft address.
func (n *Node) RaftAddr() string { return n.raft.stream.Addr().String() }

// DataDir is where the node keeps its state.
func (n *Node) DataDir() string { return n.cfg.DataDir }

// Store is this node's replica of the state, for local reads.
func (n *Node) Store() *fsm.Store { return n.fsm.Store }

// Shutdown stops the node gracefully: it stops accepting requests, lets in-flight ones end
// (until ctx ends), then stops Raft and closes the stores.
func (n *Node) Shutdown(ctx context.Context) error {
	var err error
	n.stopOnce.Do(func() {
		n.cancel()
		if n.apiSrv != nil {
			if e := n.apiSrv.Shutdown(ctx); e != nil {
				n.apiSrv.Close()
			}
		}
		if n.proxySrv != nil {
			if e := n.proxySrv.Shutdown(ctx); e != nil {
				n.proxySrv.Close()
			}
		}
		n.peers.close()
		if n.raft != nil {
			err = n.raft.close()
		}
		n.wg.Wait()
		if n.dp != nil {
			n.dp.StopExclusive(ctx)
			n.dp.Close()
		}
		n.reaper.Close()
		n.log.Info("node stopped")
	})
	return err
}

// kill stops the node the way a crash would: connections drop at once, nothing is handed
// over. The data on disk stays as it is.
func (n *Node) kill() {
	n.stopOnce.Do(func() {
		n.cancel()
		n.faults.SetPartitioned(true)
		for _, s := range []*http.Server{n.apiSrv, n.proxySrv} {
			if s != nil {
				s.Close()
			}
		}
		for _, l := range []net.Listener{n.apiLn, n.proxyLn} {
			if l != nil {
				l.Close()
			}
		}
		if n.peers != nil {
			n.peers.close()
		}
		if n.raft != nil {
			n.raft.close()
		}
		n.wg.Wait()
		if n.dp != nil {
			n.dp.Close()
		}
		n.reaper.Close() // as the kernel would when the process dies
	})
}
