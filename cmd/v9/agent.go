package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/node"
	"github.com/velocity9/v9/runtime/container"
)

// defaultContainerdSocket is where Debian's and most distributions' containerd listens.
const defaultContainerdSocket = "/run/containerd/containerd.sock"

// shutdownTimeout bounds a graceful stop after SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

func newAgentCmd(a *app) *cobra.Command {
	var (
		cfg         node.Config
		tlsDir      string
		tlsFile     auth.TLSFiles
		subnet      string
		deny        []string
		defaultRole string
		joinToken   string
	)
	host, _ := os.Hostname()
	cmd := &cobra.Command{
		Use:   "agent --data-dir DIR [flags]",
		Short: "Run one node of a v9 cluster",
		Long: `Run one node of a v9 cluster until SIGINT or SIGTERM.

A new cluster forms once --bootstrap-expect nodes have found each other through --join;
a node that already has Raft state in --data-dir rejoins its cluster and never bootstraps
again. To add a node to a running cluster, give --join and no --bootstrap-expect.`,
		Example: `  # three machines, each running:
  v9 agent --id node1 --data-dir /var/lib/v9 --bootstrap-expect 3 \
      --api-addr 0.0.0.0:7900 --api-advertise 10.0.0.1:7900 \
      --raft-addr 0.0.0.0:7910 --raft-advertise 10.0.0.1:7910 \
      --join 10.0.0.2:7900,10.0.0.3:7900`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.SignIn.CheckLists(); err != nil {
				return usageError{err}
			}
			if cfg.BootstrapExpect == 0 && len(cfg.Join) == 0 {
				a.logger.Warn("neither --bootstrap-expect nor --join given: this node only works if --data-dir already holds its cluster state")
			}
			if err := containerNetwork(&cfg.ContainerNetwork, subnet, deny); err != nil {
				return err
			}
			cfg.Logger = a.logger
			if joinToken == "" {
				joinToken = os.Getenv("V9_JOIN_TOKEN")
			}
			if err := joinForCertificate(cmd.Context(), &cfg, tlsDir, joinToken); err != nil {
				return err
			}
			if err := agentTLS(&cfg, tlsDir, tlsFile); err != nil {
				return err
			}
			cfg.ReaperCommand = reaperCommand
			if cfg.GitHub.Token == "" && cfg.GitHub.TokenFile == "" {
				cfg.GitHub.Token = os.Getenv("V9_GITHUB_TOKEN")
			}
			if cfg.SignIn.ClientSecret == "" {
				cfg.SignIn.ClientSecret = os.Getenv("V9_GITHUB_CLIENT_SECRET")
			}
			cfg.SignIn.APIURL = cfg.GitHub.APIURL
			role, err := auth.ParseRole(defaultRole)
			if err != nil || role == auth.RoleAdmin {
				return usageError{fmt.Errorf("--github-default-role %q: want developer or viewer (admins are named by --admins)", defaultRole)}
			}
			cfg.SignIn.DefaultRole = role
			return runAgent(cmd.Context(), a, cmd.ErrOrStderr(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", host, "node id, unique in the cluster")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log, snapshots and state (required)")
	f.StringVar(&cfg.APIAddr, "api-addr", "127.0.0.1:7900", "listen address of the API and console")
	f.StringVar(&cfg.ProxyAddr, "proxy-addr", "127.0.0.1:8080", "listen address of the HTTP proxy to components")
	f.StringVar(&cfg.RaftAddr, "raft-addr", "127.0.0.1:7910", "listen address of Raft")
	f.StringVar(&cfg.APIAdvertise, "api-advertise", "", "API address other nodes dial (default: --api-addr)")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "Raft address other nodes dial (default: --raft-addr)")
	f.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 0, "voters to wait for before bootstrapping a new cluster (0: join an existing one)")
	f.StringSliceVar(&cfg.Join, "join", nil, "API addresses of other nodes, comma-separated or repeated")
	f.DurationVar(&cfg.Raft.HeartbeatTimeout, "raft-heartbeat-timeout", node.DefaultHeartbeatTimeout, "Raft: silence before a follower starts an election")
	f.DurationVar(&cfg.Raft.ElectionTimeout, "raft-election-timeout", node.DefaultElectionTimeout, "Raft: silence before a candidate starts a new election")
	f.DurationVar(&cfg.Raft.LeaderLeaseTimeout, "raft-leader-lease", node.DefaultLeaderLeaseTimeout, "Raft: how long a leader stays without hearing from a quorum")
	f.Uint64Var(&cfg.Raft.SnapshotThreshold, "raft-snapshot-threshold", 8192, "Raft: log entries between snapshots")
	f.IntVar(&cfg.WasmMaxRunning, "wasm-max-running", 0, "wasm guests executing at once on this node (0: GOMAXPROCS-1, at least 1; the agent runs one P more than the CPUs, kept free of guests for Raft)")
	f.StringVar(&cfg.ContainerdSocket, "containerd-socket", defaultContainerdSocket, "containerd to run container components with; empty or unreachable: this node runs wasm only")
	f.StringVar(&cfg.ContainerRuntime, "container-runtime", "", "OCI runtime the containerd runc shim runs (its BinaryName), such as runc or crun; empty: crun where it can run, else runc")
	f.BoolVar(&cfg.ContainerNoStandby, "container-no-standby", false, "keep no standby container at rest: a stopped container's component then starts from scratch next time (slower, ~25 MB less per paused or idle component)")
	f.StringVar(&cfg.ContainerNetwork.Bridge, "container-bridge", container.DefaultBridge, "Linux bridge v9 creates for the containers' network namespaces")
	f.StringVar(&subnet, "container-subnet", container.DefaultSubnet.String(), "IPv4 subnet of the containers on --container-bridge (only on this machine)")
	f.StringSliceVar(&deny, "container-deny", nil, "more CIDRs containers may not reach, e.g. the other nodes' network (the host, other containers and 169.254.0.0/16 always are)")
	f.StringVar(&cfg.Domain, "domain", "localhost", "the proxy routes <component>.<domain> by Host")
	f.StringVar(&cfg.GitHub.APIURL, "github-api-url", "", "GitHub REST API base URL (default api.github.com; GitHub Enterprise: https://HOST/api/v3/)")
	f.StringVar(&cfg.GitHub.Token, "github-token", "", "GitHub token for push-to-deploy (a personal access token or an App installation token; default $V9_GITHUB_TOKEN); prefer --github-token-file")
	f.StringVar(&cfg.GitHub.TokenFile, "github-token-file", "", "file holding the GitHub token, read again at each use (rotated App installation tokens work)")
	f.StringVar(&cfg.GitHub.WebhookURL, "github-webhook-url", "", "public URL GitHub posts webhooks to, any node's API + /github/webhook (default http://API-ADVERTISE/github/webhook)")
	f.StringVar(&cfg.SignIn.ClientID, "github-client-id", "", "GitHub OAuth app client id: users sign in with GitHub (console and `v9 login`)")
	f.StringVar(&cfg.SignIn.ClientSecret, "github-client-secret", "", "GitHub OAuth app client secret (default $V9_GITHUB_CLIENT_SECRET; prefer the variable)")
	f.StringVar(&cfg.SignIn.WebURL, "github-url", auth.DefaultGitHubWebURL, "GitHub's web host for sign-in (GitHub Enterprise: https://HOST)")
	f.StringSliceVar(&cfg.SignIn.AllowedUsers, "github-allowed-users", nil, "GitHub users that may sign in: LOGIN, bound to the first user id that signs in with it, or LOGIN:ID, pinned to GitHub's numeric user id (comma-separated or repeated)")
	f.StringSliceVar(&cfg.SignIn.AllowedOrgs, "github-allowed-orgs", nil, "GitHub organizations whose members may sign in: NAME, or NAME:ID pinned to the organization's numeric id")
	f.StringSliceVar(&cfg.SignIn.Admins, "admins", nil, "GitHub users that get the admin role (and may always sign in): LOGIN or LOGIN:ID, as --github-allowed-users")
	f.StringVar(&defaultRole, "github-default-role", "developer", "role of a signed-in user not in --admins: developer or viewer")
	f.StringVar(&cfg.SignIn.PublicURL, "public-url", "", "base URL users reach the console at (https://v9.example.com); the OAuth callback is PUBLIC-URL/auth/github/callback (default: the request's host)")
	f.DurationVar(&cfg.SignIn.SessionTTL, "session-ttl", auth.DefaultSessionTTL, "how long a console session lasts")
	f.DurationVar(&cfg.Build.Timeout, "build-timeout", 0, "bound on one `build = \"go\"` compile (default 5m)")
	f.StringVar(&tlsDir, "tls-dir", "", "directory holding ca.pem, node-<id>.pem and node-<id>-key.pem (v9 tls ca create, v9 tls cert create --node ID)")
	f.StringVar(&tlsFile.CA, "tls-ca", "", "the cluster CA certificate (instead of --tls-dir)")
	f.StringVar(&tlsFile.Cert, "tls-cert", "", "this node's certificate (instead of --tls-dir)")
	f.StringVar(&tlsFile.Key, "tls-key", "", "this node's private key (instead of --tls-dir)")
	f.StringVar(&joinToken, "join-token", "", "one-time join token (v9 token create --join; default $V9_JOIN_TOKEN): get this node's certificate from the --join node into --tls-dir")
	f.BoolVar(&cfg.InsecureNoTLS, "insecure-no-tls", false, "run without TLS between nodes: anyone reaching the API or Raft port can act as a node (throwaway clusters only)")
	f.StringVar(&cfg.Build.CacheDir, "build-cache", "", "GOCACHE for builds (default: the go command's own)")
	registerDoorFlags(f, &cfg.Doors, &cfg.Requests)
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// containerNetwork parses the container network flags into n.
func containerNetwork(n *container.Network, subnet string, deny []string) error {
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return usageError{fmt.Errorf("--container-subnet: %w", err)}
	}
	n.Subnet = p
	for _, d := range deny {
		p, err := netip.ParsePrefix(d)
		if err != nil {
			return usageError{fmt.Errorf("--container-deny: %w", err)}
		}
		n.Deny = append(n.Deny, p)
	}
	return nil
}

// joinForCertificate gets this node's certificate with a join token into dir, unless dir
// already holds one: the first --join address that answers signs it.
func joinForCertificate(ctx context.Context, cfg *node.Config, dir, token string) error {
	if token == "" {
		return nil
	}
	if dir == "" || len(cfg.Join) == 0 {
		return usageError{errors.New("--join-token needs --tls-dir (where the certificate goes) and --join (a node holding the CA key)")}
	}
	files := auth.TLSDirFiles(dir, cfg.ID)
	if _, err := os.Stat(files.Cert); err == nil {
		cfg.Logger.Info("node certificate exists; the join token is not used", "cert", files.Cert)
		return nil
	}
	var o auth.NodeCertOptions
	for _, a := range []string{cfg.APIAdvertise, cfg.APIAddr} {
		if host, _, err := net.SplitHostPort(a); err == nil && host != "" {
			if ip := net.ParseIP(host); ip != nil {
				if !ip.IsUnspecified() {
					o.IPs = append(o.IPs, ip)
				}
			} else {
				o.DNSNames = append(o.DNSNames, host)
			}
		}
	}
	var errs []error
	for _, addr := range cfg.Join {
		err := auth.JoinWithToken(ctx, addr, token, dir, cfg.ID, o)
		if err == nil {
			cfg.Logger.Info("received this node's certificate with the join token", "via", addr, "cert", files.Cert)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return fmt.Errorf("get a node certificate with the join token: %w", errors.Join(errs...))
}

// agentTLS loads the node's certificates from --tls-dir or --tls-ca/--tls-cert/--tls-key.
// Without them the agent refuses to start unless --insecure-no-tls says otherwise.
func agentTLS(cfg *node.Config, dir string, files auth.TLSFiles) error {
	explicit := files.CA != "" || files.Cert != "" || files.Key != ""
	switch {
	case dir != "" && explicit:
		return usageError{errors.New("give --tls-dir or --tls-ca, --tls-cert and --tls-key, not both")}
	case dir != "":
		files = auth.TLSDirFiles(dir, cfg.ID)
	case explicit && (files.CA == "" || files.Cert == "" || files.Key == ""):
		return usageError{errors.New("--tls-ca, --tls-cert and --tls-key go together")}
	case !explicit:
		if cfg.InsecureNoTLS {
			return nil
		}
		return usageError{errors.New("no TLS certificates: give --tls-dir (make them with `v9 tls ca create` and `v9 tls cert create --node ID`), or --insecure-no-tls for a throwaway cluster")}
	}
	if cfg.InsecureNoTLS {
		return usageError{errors.New("--insecure-no-tls with certificates: choose one")}
	}
	nt, err := auth.LoadNodeTLS(files)
	if err != nil {
		return fmt.Errorf("load the node's TLS files: %w", err)
	}
	cfg.TLS = nt
	return nil
}

// runAgent starts one node, waits for SIGINT or SIGTERM, and shuts it down.
func runAgent(ctx context.Context, a *app, stderr io.Writer, cfg node.Config) error {
	reserveControlP()
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if advice := containerdAdvice(cfg.ContainerdSocket, false); advice != "" {
		fmt.Fprintf(stderr, "v9 agent: %s\n\n", advice)
	}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		err = fmt.Errorf("start node: %w", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			err = hintError{err, "another process holds that port; choose others with --api-addr, --proxy-addr and --raft-addr"}
		}
		return err
	}
	a.logger.Info("v9 agent started", "id", n.ID(), "api", n.APIAddr(), "proxy", n.ProxyAddr(),
		"raft", n.RaftAddr(), "data_dir", cfg.DataDir)
	go func() {
		if err := n.WaitLeader(sigCtx); err == nil {
			a.logger.Info("cluster has a leader; ready", "id", n.ID())
		}
	}()

	<-sigCtx.Done()
	stop() // a second signal ends the process at once
	a.logger.Info("shutting down", "id", n.ID(), "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown %s: %w", n.ID(), err)
	}
	a.logger.Info("stopped", "id", n.ID())
	return nil
}
