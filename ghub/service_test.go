package ghub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/githubtest"
	"github.com/velocity9/v9/internal/testkit"
	"github.com/velocity9/v9/internal/wasmtest"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// storeCluster applies commands straight to an fsm.Store, as a one-node leader would: no
// Raft. It counts the entries written.
type storeCluster struct {
	st      *fsm.Store
	mu      sync.Mutex
	idx     uint64
	entries []*statev1.Command
}

func (c *storeCluster) Apply(_ context.Context, cmd *statev1.Command) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd = proto.Clone(cmd).(*statev1.Command)
	cmd.Time = timestamppb.Now()
	c.idx++
	c.entries = append(c.entries, cmd)
	return c.idx, c.st.Apply(c.idx, cmd)
}

func (c *storeCluster) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// newStoreService is a Service on cl's store and the fake GitHub gh, with no Raft, serving
// its webhook on a real HTTP server (the address it registers hooks with); logger may be
// nil.
func newStoreService(t *testing.T, gh *githubtest.Server, cl *storeCluster, logger *slog.Logger) *Service {
	t.Helper()
	var srv *httptest.Server
	s := New(Options{
		NodeID: "n1", DataDir: t.TempDir(), GitHub: Config{APIURL: gh.APIURL(), Token: gh.Token},
		MaxArtifactBytes: 1 << 20, APIAddr: func() string { return srv.Listener.Addr().String() },
		State: cl.st, Cluster: cl, Artifacts: memArtifacts{}, Logs: noLogs{}, Logger: logger,
	})
	srv = httptest.NewServer(http.HandlerFunc(s.ServeWebhook))
	t.Cleanup(srv.Close)
	return s
}

// memArtifacts keeps artifacts' digests only.
type memArtifacts struct{}

func (memArtifacts) Put(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
func (memArtifacts) Pin(string) func() { return func() {} }

type noLogs struct{}

func (noLogs) Append(_, _, _, _ string) {}

// eventually is testkit.Eventually with what the test waits for named in its failure.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, func() error {
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// lastStatus is a condition: the newest commit status of sha in repo is state.
func lastStatus(gh *githubtest.Server, repo, sha, state string) func() error {
	return func() error {
		if sts := gh.Statuses(repo, sha); len(sts) == 0 || sts[len(sts)-1].State != state {
			return fmt.Errorf("statuses %+v", sts)
		}
		return nil
	}
}

// TestServiceWithoutRaft drives the package against an fsm.Store and the fake GitHub, with no
// cluster: a linked create is one entry, a signed push becomes a pending deployment, the
// build loop builds it into a ready, active deployment, and the commit gets its statuses.
func TestServiceWithoutRaft(t *testing.T) {
	gh := githubtest.New(t)
	const repo = "octo/site"
	gh.CreateRepo(repo, "main")
	module := string(wasmtest.Trap()) // runnable as far as the upload check sees
	files := func(greeting string) map[string]string {
		return map[string]string{"app.wasm": module,
			"v9.toml": "name = \"site\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"app.wasm\"\n[env]\nGREETING = \"" + greeting + "\"\n"}
	}
	first := gh.Commit(repo, "main", "first", files("one"))

	st := fsm.NewStore()
	cl := &storeCluster{st: st}
	s := newStoreService(t, gh, cl, nil)
	// startTerm runs the leader controllers for one term of leadership, as leader.Owner does.
	startTerm := func() (stop func()) {
		tctx, cancel := context.WithCancel(context.Background())
		var loops sync.WaitGroup
		for _, loop := range []func(context.Context){s.BuildLoop, s.StatusLoop} {
			loops.Add(1)
			go func() { defer loops.Done(); loop(tctx) }()
		}
		return func() { cancel(); loops.Wait() }
	}
	endTerm := startTerm()
	defer func() { endTerm() }()
	ctx := context.Background()

	resp, err := s.CreateLinked(ctx, &componentv1.CreateRequest{Name: "site", Source: &statev1.Source{GithubRepo: repo, Branch: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := cl.count(); n != 1 {
		t.Fatalf("a linked create wrote %d entries, want 1", n)
	}
	if hooks := gh.Hooks(repo); len(hooks) != 1 || !strings.HasSuffix(hooks[0].URL, WebhookPath) {
		t.Fatalf("hooks %+v", hooks)
	}
	id := resp.Component.Id
	ready := func(sha string) func() error {
		return func() error {
			for _, d := range st.Deployments(id) {
				if d.CommitSha == sha {
					c, _ := st.ComponentByID(id)
					if d.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY || c.ActiveDeploymentId != d.Id {
						return fmt.Errorf("deployment of %s is %s (%s)", sha[:7], d.Status, d.Error)
					}
					return nil
				}
			}
			return fmt.Errorf("no deployment of %s", sha[:7])
		}
	}
	eventually(t, "the branch head builds", ready(first))
	if c, _ := st.Component("site"); c.Spec.Env["GREETING"] != "one" {
		t.Fatalf("the component did not take the manifest's spec: %v", c.Spec)
	}

	// A signed push through the webhook handler builds too.
	second, deliveries := gh.Push(repo, "main", "second", files("two"))
	if len(deliveries) != 1 || deliveries[0].Status != http.StatusAccepted || !strings.Contains(deliveries[0].Answer, "deployed") {
		t.Fatalf("push deliveries %+v", deliveries)
	}
	eventually(t, "the push builds", ready(second))
	eventually(t, "the pending status is posted", func() error {
		if sts := gh.Statuses(repo, second); len(sts) == 0 || sts[0].State != "pending" || sts[0].Context != "v9/site" {
			return fmt.Errorf("statuses %+v", sts)
		}
		return nil
	})

	// A push the manifest breaks fails with the reason, on the deployment and the commit.
	bad, _ := gh.Push(repo, "main", "bad", map[string]string{"v9.toml": "name = \"site\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"app.wasm\"\n[limits]\nmemory = \"1Mi\"\n", "app.wasm": module})
	eventually(t, "the bad push fails", func() error {
		for _, d := range st.Deployments(id) {
			if d.CommitSha == bad && d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED && strings.Contains(d.Error, "16Mi..64Gi") {
				return nil
			}
		}
		return fmt.Errorf("deployments %v", st.Deployments(id))
	})
	eventually(t, "the failure status is posted", lastStatus(gh, repo, bad, "failure"))

	// The term ends before the pushed version serves; the next term takes over its report
	// (here it "serves" by being paused, which needs no instance).
	endTerm()
	endTerm = startTerm()
	if _, err := cl.Apply(ctx, &statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{
		Name: "site", Desired: statev1.DesiredState_DESIRED_STATE_PAUSED,
	}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the next term posts success", lastStatus(gh, repo, second, "success"))

	// Another node's term (it never posted anything) takes over the final statuses of the
	// recent deployments: the failure a term's end may have dropped from the queue is posted
	// again, and not lost.
	endTerm()
	before := len(gh.Statuses(repo, bad))
	s2 := New(s.o)
	ctx2, cancel2 := context.WithCancel(ctx)
	var loops2 sync.WaitGroup
	for _, loop := range []func(context.Context){s2.BuildLoop, s2.StatusLoop} {
		loops2.Add(1)
		go func() { defer loops2.Done(); loop(ctx2) }()
	}
	eventually(t, "the next leader posts the failure again", func() error {
		sts := gh.Statuses(repo, bad)
		if len(sts) <= before || sts[len(sts)-1].State != "failure" || !strings.Contains(sts[len(sts)-1].Description, "16Mi..64Gi") {
			return fmt.Errorf("statuses %+v", sts)
		}
		return nil
	})
	cancel2()
	loops2.Wait()
	endTerm = startTerm()

	// Deleting the component deletes its hook.
	if _, err := s.DeleteComponent(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	if hooks := gh.Hooks(repo); len(hooks) != 0 {
		t.Fatalf("hooks after delete: %+v", hooks)
	}
	if _, err := s.CreateLinked(ctx, &componentv1.CreateRequest{Name: "Bad", Source: &statev1.Source{GithubRepo: repo}}); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("bad name: %v", err)
	}
}
