package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

func newDevCmd(a *app) *cobra.Command {
	var (
		dataDir string
		ctrd    string
		l       devLayout
		gh      ghub.Config
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local cluster of three nodes in this process",
		Long: `Run a local v9 cluster in this one process, until Ctrl-C.

Node nK listens on 127.0.0.1 at --api-port+K-1 (API), --proxy-port+K-1 (proxy) and
--raft-port+K-1 (Raft), and keeps its data in <data-dir>/nK. Starting again with the same
--data-dir brings back the same cluster and state.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if gh.Token == "" && gh.TokenFile == "" {
				gh.Token = os.Getenv("V9_GITHUB_TOKEN")
			}
			return runDev(cmd.Context(), a, cmd.OutOrStdout(), dataDir, ctrd, l, gh)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", ".v9-dev", "directory holding one data dir per node")
	f.IntVar(&l.Nodes, "nodes", 3, "number of nodes")
	f.IntVar(&l.APIPort, "api-port", 7900, "API port of the first node; the others count up")
	f.IntVar(&l.ProxyPort, "proxy-port", 8080, "proxy port of the first node; the others count up")
	f.IntVar(&l.RaftPort, "raft-port", 7910, "Raft port of the first node; the others count up")
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

// checkSaved refuses a layout that differs from the one the data dir was created with in
// what Raft cares about. It reports whether a layout was saved before.
func (l devLayout) checkSaved(dir string) (bool, error) {
	path := filepath.Join(dir, devLayoutFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read layout: %w", err)
	}
	var old devLayout
	if err := json.Unmarshal(b, &old); err != nil {
		return false, fmt.Errorf("read layout %s: %w", path, err)
	}
	if old.Nodes != l.Nodes || old.RaftPort != l.RaftPort {
		return true, fmt.Errorf("%s holds a cluster of %d nodes with --raft-port %d; start it with those values, or use another --data-dir",
			dir, old.Nodes, old.RaftPort)
	}
	return true, nil
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

func runDev(ctx context.Context, a *app, out io.Writer, dataDir, ctrd string, l devLayout, gh ghub.Config) error {
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
	saved, err := l.checkSaved(dir)
	if err != nil {
		return err
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
			ContainerdSocket: ctrd,
			WasmCacheDir:     filepath.Join(dir, "wasm-cache"), // compile once for all nodes
			GitHub:           gh,
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
				err = hintError{err, "is another v9 dev (or agent) running? Stop it, or choose free ports with --api-port, --proxy-port and --raft-port"}
			}
			return errors.Join(err, shutdownAll(ctx, nodes))
		}
		nodes = append(nodes, n)
	}
	if !saved {
		// Every port is bound: from here on Raft may record these addresses.
		if err := l.save(dir); err != nil {
			return errors.Join(err, shutdownAll(ctx, nodes))
		}
	}

	leader, tokenPath, err := waitDevLeader(sigCtx, nodes, secret)
	if err != nil {
		if sigCtx.Err() != nil && ctx.Err() == nil {
			err = nil // interrupted while starting: just stop
		}
		return errors.Join(err, shutdownAll(ctx, nodes))
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
Use it from another terminal:
  export V9_ADDR=%s
  v9 cluster status
  v9 component create hello --runtime wasm
Any node answers; writes go through the leader. Ctrl-C stops the cluster, and
'v9 dev --data-dir %s' brings it back with its state.
`, tokenPath, filepath.Join(dataDir, devTokenFile), nodes[0].APIAddr(), dataDir)

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
	cli := client.New(addr, client.WithToken(secret))
	_, err := cli.ACL.Bootstrap(ctx, connect.NewRequest(&aclv1.BootstrapRequest{Secret: secret}))
	if err != nil && connect.CodeOf(err) != connect.CodeFailedPrecondition {
		return "", fmt.Errorf("bootstrap the ACL: %w", err)
	}
	if _, err := cli.ACL.WhoAmI(ctx, connect.NewRequest(&aclv1.WhoAmIRequest{})); err != nil {
		return "", fmt.Errorf("the dev token was refused (was %s replaced?): %w", devTokenFile, err)
	}
	return writeTokenFile(secret)
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
