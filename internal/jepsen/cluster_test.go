//go:build !race

package jepsen

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/rpc/client"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
)

// buildV9 builds the v9 binary into a temporary directory, without the race detector.
func buildV9(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "v9")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/velocity9/v9/cmd/v9")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build v9: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a 127.0.0.1 address the test picked and found free. Ports come from
// below Linux's ephemeral range (32768-60999): a killed agent's ports stay free for its
// restart, since neither outgoing connections nor other tests' 127.0.0.1:0 listeners take
// ports there. The listener is held until the cluster starts, so no two picks collide.
func freePort(t *testing.T, held *[]net.Listener) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+mrand.IntN(12000)))
		if err != nil {
			continue
		}
		*held = append(*held, l)
		return l.Addr().String()
	}
	t.Fatal("no free port in 127.0.0.1:20000-32000")
	return ""
}

// agent is one `v9 agent` process, restarted with the same flags and data dir.
type agent struct {
	id, api, proxy, raft string
	dataDir, logPath     string
	args                 []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

// cluster is three agents on 127.0.0.1, each with its own data dir.
type cluster struct {
	bin    string
	agents []*agent
}

func newCluster(t *testing.T, bin, logDir string, n int, snapshotThreshold uint64) *cluster {
	t.Helper()
	c := &cluster{bin: bin}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := range n {
		a := &agent{
			id:  fmt.Sprintf("n%d", i+1),
			api: freePort(t, &held), proxy: freePort(t, &held), raft: freePort(t, &held),
			dataDir: filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i+1)),
		}
		a.logPath = filepath.Join(logDir, a.id+".log")
		c.agents = append(c.agents, a)
	}
	for _, a := range c.agents {
		var join []string
		for _, b := range c.agents {
			if b != a {
				join = append(join, b.api)
			}
		}
		a.args = []string{"agent", "--id", a.id, "--data-dir", a.dataDir,
			"--bootstrap-expect", fmt.Sprint(n), "--join", strings.Join(join, ","),
			"--api-addr", a.api, "--proxy-addr", a.proxy, "--raft-addr", a.raft,
			"--containerd-socket", "",
			// The storm tests Raft and the API under crashes, not TLS: plain HTTP keeps the
			// harness's clients simple (tokens are still checked).
			"--insecure-no-tls"}
		if snapshotThreshold > 0 {
			a.args = append(a.args, "--raft-snapshot-threshold", fmt.Sprint(snapshotThreshold))
		}
	}
	t.Cleanup(func() {
		for _, a := range c.agents {
			a.kill()
		}
	})
	return c
}

// start starts a's process; its output is appended to a.logPath.
func (a *agent) start(bin string) error {
	if a.running() {
		return fmt.Errorf("%s already running", a.id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== start %s %s\n", a.id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, a.args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The agents die with the test process, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", a.id, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	a.cmd, a.done = cmd, done
	return nil
}

// kill sends SIGKILL to a's process, if it runs, and waits until it has exited.
func (a *agent) kill() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// running reports whether a's process runs; one that exited by itself (a port taken, a
// crash) is forgotten, so start can start it again.
func (a *agent) running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return false
	}
	select {
	case <-a.done:
		a.cmd = nil
		return false
	default:
		return true
	}
}

// status asks a for its view of the cluster.
func (a *agent) status(ctx context.Context) (*clusterv1.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := client.New(a.api, client.WithToken(adminSecret)).Cluster.Status(ctx, connect.NewRequest(&clusterv1.StatusRequest{}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// leader returns the running agent that says it leads, or nil.
func (c *cluster) leader(ctx context.Context) *agent {
	for _, a := range c.agents {
		if !a.running() {
			continue
		}
		if st, err := a.status(ctx); err == nil && st.RaftState == "Leader" {
			return a
		}
	}
	return nil
}

// adminSecret is the admin token the test bootstraps the cluster's ACLs with.
const adminSecret = "v9s_jepsen-admin-token-0123456789abcdefghijkl"

// bootstrap creates the cluster's first token (adminSecret) once the cluster can commit it.
func (c *cluster) bootstrap(ctx context.Context) error {
	for {
		for _, a := range c.agents {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := aclv1connect.NewACLServiceClient(http.DefaultClient, client.BaseURL(a.api)).
				Bootstrap(cctx, connect.NewRequest(&aclv1.BootstrapRequest{Secret: adminSecret}))
			cancel()
			if err == nil {
				return nil
			}
			if connect.CodeOf(err) == connect.CodeFailedPrecondition && strings.Contains(err.Error(), "bootstrap") {
				// An earlier try of ours committed although its answer was lost.
				if _, err := a.status(ctx); err == nil {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("could not bootstrap the cluster's ACLs")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitReady waits until every agent answers and one leads with all of them as members.
func (c *cluster) waitReady(ctx context.Context) error {
	for {
		ready := c.leader(ctx) != nil
		for _, a := range c.agents {
			st, err := a.status(ctx)
			if err != nil || st.LeaderId == "" || len(st.Members) != len(c.agents) {
				ready = false
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("cluster not ready: no leader with every node a member")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
