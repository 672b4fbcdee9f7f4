package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/ghub"
	"github.com/velocity9/v9/internal/bounds"
	"github.com/velocity9/v9/node"
	"github.com/velocity9/v9/proxy"
	"github.com/velocity9/v9/rpc/client"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
)

// devLeaderTimeout bounds how long `v9 dev` waits for the nodes to elect a leader.
const devLeaderTimeout = 30 * time.Second

// devLayout is what `v9 dev` records in its data dir on first start. Raft keeps the nodes'
// addresses in its configuration, so a restart must use the same node count and Raft ports.
type devLayout struct {
	Nodes     int `json:"nodes"`
	APIPort   int `json:"api_port"`
	ProxyPort int `json:"proxy_port"`
	RaftPort  int `json:"raft_port"`

	// The nodes' doors (flags, not recorded: they may change between starts).
	Doors    bounds.Doors `json:"-"`
	Requests proxy.Bounds `json:"-"`
}

const devLayoutFile = "v9-dev.json"

// --ports P puts the Raft ports at P+devRaftOffset and the proxies at P+devProxyOffset, as the
// defaults 7900, 7910 and 8080 are.
const (
	devRaftOffset  = 10
	devProxyOffset = 180
)

// devOptions is what the flags of `v9 dev` ask for.
type devOptions struct {
	dataDir  string
	ctrd     string
	layout   devLayout
	explicit bool // ports or node count given on the command line, rather than defaults
	example  bool
	gh       ghub.Config
}

func newDevCmd(a *app) *cobra.Command {
	var (
		dataDir string
		ctrd    string
		l       devLayout
		gh      ghub.Config
		ports   int
		example bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local cluster of three nodes in this process",
		Long: `Run a local v9 cluster in this one process, until Ctrl-C.

Node nK listens on 127.0.0.1 at --api-port+K-1 (API), --proxy-port+K-1 (proxy) and
--raft-port+K-1 (Raft), and keeps its data in <data-dir>/nK. --ports P sets all three at
once: API P, Raft P+10, proxy P+180 (the defaults are 7900, 7910 and 8080). The ports are
recorded in the data dir: starting again with the same --data-dir and no port flags brings
back the same cluster, on the same ports, with its state.

On a new data dir, v9 dev also deploys the example component "hello"
(examples/hello-wasm, built with the go command) and prints its URL last.`,
		Example: `  v9 dev
  v9 dev --ports 17900 --data-dir /tmp/v9-dev   # a second cluster beside the first
  v9 dev --example=false                          # an empty cluster`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if gh.Token == "" && gh.TokenFile == "" {
				gh.Token = os.Getenv("V9_GITHUB_TOKEN")
			}
			f := cmd.Flags()
			if ports != 0 {
				if f.Changed("api-port") || f.Changed("proxy-port") || f.Changed("raft-port") {
					return usageError{errors.New("--ports sets --api-port, --proxy-port and --raft-port: give it alone")}
				}
				l.APIPort, l.RaftPort, l.ProxyPort = ports, ports+devRaftOffset, ports+devProxyOffset
			}
			explicit := ports != 0 || f.Changed("api-port") || f.Changed("proxy-port") || f.Changed("raft-port") || f.Changed("nodes")
			return runDev(cmd, a, devOptions{dataDir: dataDir, ctrd: ctrd, layout: l, explicit: explicit, example: example, gh: gh})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", ".v9-dev", "directory holding one data dir per node, the certificates, the admin token and the ports")
	f.IntVar(&l.Nodes, "nodes", 3, "number of nodes")
	f.IntVar(&ports, "ports", 0, "first port of the cluster: API P, Raft P+10, proxy P+180 (default 7900, or the ports the data dir recorded)")
	f.IntVar(&l.APIPort, "api-port", 7900, "API port of the first node; the others count up")
	f.IntVar(&l.ProxyPort, "proxy-port", 8080, "proxy port of the first node; the others count up")
	f.IntVar(&l.RaftPort, "raft-port", 7910, "Raft port of the first node; the others count up")
	f.BoolVar(&example, "example", true, "on a new data dir, build and deploy the example component hello (needs the go command)")
	f.StringVar(&ctrd, "containerd-socket", defaultContainerdSocket, "containerd the nodes run container components with; empty or unreachable: wasm only")
	f.StringVar(&gh.TokenFile, "github-token-file", "", "file holding a GitHub token for push-to-deploy (default $V9_GITHUB_TOKEN); GitHub cannot reach a local cluster, so link repositories with --poll")
	f.StringVar(&gh.APIURL, "github-api-url", "", "GitHub REST API base URL (GitHub Enterprise)")
	registerDoorFlags(f, &l.Doors, &l.Requests)
	return cmd
}

func (l devLayout) check() error {
	if l.Nodes < 1 || l.Nodes > 9 {
		return usageError{fmt.Errorf("--nodes %d: want 1 to 9", l.Nodes)}
	}
	ranges := []struct {
		flag  string
		first int
	}{{"--api-port", l.APIPort}, {"--proxy-port", l.ProxyPort}, {"--raft-port", l.RaftPort}}
	for i, r := range ranges {
		if r.first < 1 || r.first+l.Nodes-1 > 65535 {
			return usageError{fmt.Errorf("%s %d: the ports %d..%d must lie in 1..65535", r.flag, r.first, r.first, r.first+l.Nodes-1)}
		}
		for _, o := range ranges[i+1:] {
			if r.first < o.first+l.Nodes && o.first < r.first+l.Nodes {
				return usageError{fmt.Errorf("%s %d and %s %d overlap: each needs %d consecutive free ports", r.flag, r.first, o.flag, o.first, l.Nodes)}
			}
		}
	}
	return nil
}

// loadLayout reads the layout the data dir was created with, if any.
func loadLayout(dir string) (devLayout, bool, error) {
	path := filepath.Join(dir, devLayoutFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return devLayout{}, false, nil
	}
	if err != nil {
		return devLayout{}, false, fmt.Errorf("read layout: %w", err)
	}
	var old devLayout
	if err := json.Unmarshal(b, &old); err != nil {
		return devLayout{}, false, fmt.Errorf("read layout %s: %w", path, err)
	}
	return old, true, nil
}

// checkSaved refuses a layout that differs from the one the data dir was created with in
// what Raft cares about.
func (l devLayout) checkSaved(dir string, old devLayout) error {
	if old.Nodes != l.Nodes || old.RaftPort != l.RaftPort {
		return usageError{fmt.Errorf("%s holds a cluster of %d nodes with --raft-port %d; start it with those values, or use another --data-dir (make run DEV_DATA_DIR=...)",
			dir, old.Nodes, old.RaftPort)}
	}
	return nil
}

// checkFree tries each port of the layout and names the first one taken, with the knobs
// that choose others.
func (l devLayout) checkFree(saved bool) error {
	for _, r := range []struct {
		what  string
		first int
	}{{"API", l.APIPort}, {"proxy", l.ProxyPort}, {"Raft", l.RaftPort}} {
		for k := range l.Nodes {
			port := r.first + k
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				other := l.APIPort + 10000
				if other+devProxyOffset+l.Nodes > 65535 {
					other = 17900
				}
				hint := fmt.Sprintf("is another v9 dev (or agent) running? Stop it, or choose other ports: `make run PORTS=%d` or `v9 dev --ports %d` (API P, Raft P+10, proxy P+180)", other, other)
				if saved && r.what == "Raft" {
					hint = "this data dir's cluster keeps its Raft ports; stop what holds the port, or start a new cluster elsewhere: `make run DEV_DATA_DIR=/tmp/v9-dev2 PORTS=17900`"
				}
				return hintError{fmt.Errorf("port %d (%s port of n%d) is taken: %w", port, r.what, k+1, errors.Unwrap(err)), hint}
			}
			ln.Close()
		}
	}
	return nil
}

func (l devLayout) save(dir string) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, devLayoutFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("record layout: %w", err)
	}
	return nil
}

func runDev(cmd *cobra.Command, a *app, o devOptions) error {
	reserveControlP()
	ctx, out, progress := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	dataDir, l := o.dataDir, o.layout
	if err := l.check(); err != nil {
		return err
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	old, saved, err := loadLayout(dir)
	if err != nil {
		return err
	}
	if saved && !o.explicit {
		l = old // the ports this data dir was started with last
	}
	if saved {
		if err := l.checkSaved(dir, old); err != nil {
			return err
		}
	}
	if err := l.checkFree(saved); err != nil {
		return err
	}
	if advice := containerdAdvice(o.ctrd, true); advice != "" {
		fmt.Fprintf(progress, "v9 dev: %s\n\n", advice)
	}
	if !saved {
		fmt.Fprintf(progress, "v9 dev: new cluster in %s: making its TLS certificates and admin token\n", dataDir)
	}

	secret, err := devSecret(dir)
	if err != nil {
		return err
	}
	tlsDir := filepath.Join(dir, "tls")
	if err := devCerts(tlsDir, l.Nodes); err != nil {
		return err
	}

	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(progress, "v9 dev: starting %d nodes (API ports %d-%d) and electing a leader\n", l.Nodes, l.APIPort, l.APIPort+l.Nodes-1)
	addr := func(port, k int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port+k)) }
	var nodes []*node.Node
	for k := range l.Nodes {
		id := fmt.Sprintf("n%d", k+1)
		cfg := node.Config{
			ID:               id,
			DataDir:          filepath.Join(dir, id),
			APIAddr:          addr(l.APIPort, k),
			ProxyAddr:        addr(l.ProxyPort, k),
			RaftAddr:         addr(l.RaftPort, k),
			BootstrapExpect:  l.Nodes,
			ContainerdSocket: o.ctrd,
			WasmCacheDir:     filepath.Join(dir, "wasm-cache"), // compile once for all nodes
			GitHub:           o.gh,
			ReaperCommand:    reaperCommand,
			Logger:           a.logger, // the node adds node=<id> itself
			Doors:            l.Doors,
			Requests:         l.Requests,
		}
		if cfg.TLS, err = auth.LoadNodeTLS(auth.TLSDirFiles(tlsDir, id)); err != nil {
			return errors.Join(fmt.Errorf("load %s's certificate: %w", id, err), shutdownAll(ctx, nodes))
		}
		for j := range l.Nodes {
			if j != k {
				cfg.Join = append(cfg.Join, addr(l.APIPort, j))
			}
		}
		n, err := node.Start(ctx, cfg)
		if err != nil {
			err = fmt.Errorf("start %s: %w", id, err)
			if errors.Is(err, syscall.EADDRINUSE) {
				err = hintError{err, "is another v9 dev (or agent) running? Stop it, or choose other ports: `make run PORTS=17900` or `v9 dev --ports 17900`"}
			}
			return errors.Join(err, shutdownAll(ctx, nodes))
		}
		nodes = append(nodes, n)
	}
	// Every port is bound: from here on Raft may record these addresses, and the next start
	// takes the same ports.
	if err := l.save(dir); err != nil {
		return errors.Join(err, shutdownAll(ctx, nodes))
	}

	leader, tokenPath, err := waitDevLeader(sigCtx, nodes, secret)
	if err == nil {
		err = devCA(tlsDir)
	}
	if err != nil {
		if sigCtx.Err() != nil && ctx.Err() == nil {
			err = nil // interrupted while starting: just stop
		}
		return errors.Join(err, shutdownAll(ctx, nodes))
	}

	exampleURL := ""
	if o.example {
		exampleURL = devExample(sigCtx, cmd, a, progress, nodes[0], secret, !saved)
		if sigCtx.Err() != nil {
			return shutdownAll(ctx, nodes)
		}
	}

	tw := newTable(out)
	fmt.Fprintf(tw, "v9 dev: %d-node cluster is up, leader %s\n\n", len(nodes), leader)
	fmt.Fprintln(tw, "NODE\tAPI\tPROXY\tDATA")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.ID(), n.APIAddr(), orDash(n.ProxyAddr()), n.DataDir())
	}
	if err := tw.Flush(); err != nil {
		return errors.Join(err, shutdownAll(ctx, nodes))
	}
	fmt.Fprintf(out, `
An admin token is in %s (and %s), where the CLI finds it.
The CLI also reaches the API over TLS (https://%s), with the CA kept beside the token.
Use it from another terminal:
  export V9_ADDR=%s
  v9 cluster status
  v9 component list
Any node answers; writes go through the leader. Ctrl-C stops the cluster, and
'v9 dev --data-dir %s' brings it back with its state, on the same ports.

Console: http://%s/
`, tokenPath, filepath.Join(dataDir, devTokenFile), nodes[0].APIAddr(), nodes[0].APIAddr(), dataDir, nodes[0].APIAddr())
	if exampleURL != "" {
		// Last, so that `make run` ends on a link that answers.
		fmt.Fprintf(out, "The example %q is served at (any node's proxy answers):\n%s\n", devExampleName, exampleURL)
	}

	<-sigCtx.Done()
	stop() // a second signal ends the process at once
	a.logger.Info("stopping the cluster", "timeout", shutdownTimeout)
	if err := shutdownAll(ctx, nodes); err != nil {
		return err
	}
	a.logger.Info("stopped")
	return nil
}

// devCerts makes the dev cluster's CA and one certificate per node under dir, once.
func devCerts(dir string, nodes int) error {
	if _, err := os.Stat(filepath.Join(dir, auth.CACertFile)); errors.Is(err, fs.ErrNotExist) {
		if err := auth.CreateCA(dir); err != nil {
			return fmt.Errorf("create the dev CA: %w", err)
		}
	}
	for k := range nodes {
		id := fmt.Sprintf("n%d", k+1)
		if _, err := os.Stat(filepath.Join(dir, auth.NodeCertFile(id))); errors.Is(err, fs.ErrNotExist) {
			if err := auth.CreateNodeCert(dir, id, auth.NodeCertOptions{}); err != nil {
				return fmt.Errorf("create %s's certificate: %w", id, err)
			}
		}
	}
	return nil
}

// devTokenFile holds the dev cluster's admin token secret, in its data dir (0600). The
// cluster keeps only its hash, so a restart reads the secret back from here.
const devTokenFile = "admin-token"

// devSecret returns the dev cluster's admin secret, chosen and saved on first start.
func devSecret(dir string) (string, error) {
	path := filepath.Join(dir, devTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the dev token: %w", err)
	}
	s := auth.NewSecret()
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save the dev token: %w", err)
	}
	return s, nil
}

// devLogin bootstraps the dev cluster's ACL with its secret on first start (later starts
// find it done) and keeps the secret where the CLI looks, as `v9 login` would.
func devLogin(ctx context.Context, addr, secret string) (string, error) {
	// Bootstrap carries no credentials: a follower forwards it to the leader, which would
	// refuse a token it does not know yet.
	_, err := client.New(addr).ACL.Bootstrap(ctx, connect.NewRequest(&aclv1.BootstrapRequest{Secret: secret}))
	if err != nil && connect.CodeOf(err) != connect.CodeFailedPrecondition {
		return "", fmt.Errorf("bootstrap the ACL: %w", err)
	}
	// The node may answer before it has applied the bootstrap (reads are local): ask again
	// until it knows the token or ctx ends.
	cli := client.New(addr, client.WithToken(secret))
	for {
		_, err := cli.ACL.WhoAmI(ctx, connect.NewRequest(&aclv1.WhoAmIRequest{}))
		if err == nil {
			break
		}
		if connect.CodeOf(err) != connect.CodeUnauthenticated || ctx.Err() != nil {
			return "", fmt.Errorf("the dev token was refused (was %s replaced?): %w", devTokenFile, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return writeTokenFile(secret)
}

// devCA keeps the dev CA certificate where the CLI finds it for https:// addresses.
func devCA(tlsDir string) error {
	b, err := os.ReadFile(filepath.Join(tlsDir, auth.CACertFile))
	if err != nil {
		return err
	}
	return writeCAFile(b)
}

// waitDevLeader waits until every node knows a leader, bootstraps the ACL (devLogin), and
// returns the leader's id and where the token was kept.
func waitDevLeader(ctx context.Context, nodes []*node.Node, secret string) (string, string, error) {
	wctx, cancel := context.WithTimeout(ctx, devLeaderTimeout)
	defer cancel()
	for _, n := range nodes {
		if err := n.WaitLeader(wctx); err != nil {
			if ctx.Err() != nil {
				return "", "", ctx.Err()
			}
			return "", "", fmt.Errorf("no leader elected within %s (node %s: %v); see the log above", devLeaderTimeout, n.ID(), err)
		}
	}
	tokenPath, err := devLogin(wctx, nodes[0].APIAddr(), secret)
	if err != nil {
		return "", "", err
	}
	// Ask through the API, as a user would: it also proves the API answers.
	res, err := client.New(nodes[0].APIAddr(), client.WithToken(secret)).Cluster.Status(wctx, connect.NewRequest(&clusterv1.StatusRequest{}))
	if err != nil {
		return "", "", fmt.Errorf("ask %s for the cluster status: %w", nodes[0].ID(), err)
	}
	return orDash(res.Msg.GetLeaderId()), tokenPath, nil
}

// shutdownAll stops the nodes in parallel, each within shutdownTimeout.
func shutdownAll(ctx context.Context, nodes []*node.Node) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			if err := n.Shutdown(sctx); err != nil {
				errs[i] = fmt.Errorf("shutdown %s: %w", n.ID(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
