package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/ghub"
	"github.com/velocity9/v9/internal/githubtest"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

const testRepo = "octo/hello"

// newGitHubCluster starts a fake GitHub with an empty repository and a cluster whose nodes
// talk to it.
func newGitHubCluster(t testing.TB, n int, configure func(*Config)) (*TestCluster, *githubtest.Server) {
	t.Helper()
	gh := githubtest.New(t)
	gh.CreateRepo(testRepo, "main")
	c := NewTestClusterConfig(t, n, func(cfg *Config) {
		cfg.GitHub = ghub.Config{APIURL: gh.APIURL(), Token: gh.Token}
		if configure != nil {
			configure(cfg)
		}
	})
	return c, gh
}

func deployClient(n *Node) deployv1connect.DeployServiceClient {
	return deployv1connect.NewDeployServiceClient(TestHTTPClient, "http://"+n.APIAddr())
}

func createLinked(t testing.TB, n *Node, name string) *componentv1.CreateResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := componentClient(n).Create(ctx, connect.NewRequest(&componentv1.CreateRequest{
		Name: name, Runtime: statev1.Runtime_RUNTIME_WASM,
		Source: &statev1.Source{GithubRepo: testRepo, Branch: "main"},
	}))
	if err != nil {
		t.Fatalf("create linked component via %s: %v", n.ID(), err)
	}
	return resp.Msg
}

// deploymentsOf reads a component's deployments on n, newest first.
func deploymentsOf(t *testing.T, n *Node, name string) []*statev1.Deployment {
	t.Helper()
	ds, _, err := n.Deployments(context.Background(), name, 0, 0)
	if err != nil {
		t.Fatalf("deployments of %s on %s: %v", name, n.ID(), err)
	}
	return ds
}

// waitDeployment waits until the deployment of sha reaches status on n and returns it.
func waitDeployment(t *testing.T, n *Node, name, sha string, status statev1.DeploymentStatus) *statev1.Deployment {
	t.Helper()
	var found *statev1.Deployment
	Eventually(t, 60*time.Second, func() error {
		for _, d := range deploymentsOf(t, n, name) {
			if d.CommitSha == sha {
				if d.Status == status {
					found = d
					return nil
				}
				return fmt.Errorf("deployment of %s is %s (%s)", sha[:7], d.Status, d.Error)
			}
		}
		return fmt.Errorf("no deployment of %s", sha[:7])
	})
	return found
}

// waitStatus waits until the last commit status GitHub holds for sha has state.
func waitStatus(t *testing.T, gh *githubtest.Server, sha, state string) githubtest.Status {
	t.Helper()
	var last githubtest.Status
	Eventually(t, 60*time.Second, func() error {
		sts := gh.Statuses(testRepo, sha)
		if len(sts) == 0 {
			return fmt.Errorf("no status on %s", sha[:7])
		}
		last = sts[len(sts)-1]
		if last.State != state {
			return fmt.Errorf("status of %s is %s (%s)", sha[:7], last.State, last.Description)
		}
		return nil
	})
	return last
}

func webhookURL(n *Node) string { return "http://" + n.APIAddr() + ghub.WebhookPath }

// TestGitHubWebhookIntake checks what the webhook endpoint accepts and records, on any
// node: signatures, malformed payloads, other branches, redeliveries, pings; and that the
// link's secret never leaves through the read APIs and deleting the component removes the
// hook.
func TestGitHubWebhookIntake(t *testing.T) {
	c, gh := newGitHubCluster(t, 3, nil)
	head := gh.Commit(testRepo, "main", "no manifest yet", map[string]string{"README.md": "hello"})
	follower := c.Follower(t)
	created := createLinked(t, follower, "hello")
	if created.Deployment.GetCommitSha() != head || created.Component.GetSource().GetGithubRepo() != testRepo {
		t.Fatalf("create response: %v", created)
	}
	hooks := gh.Hooks(testRepo)
	if len(hooks) != 1 || hooks[0].ContentType != "json" || len(hooks[0].Secret) < 32 || !hooks[0].Active ||
		!strings.HasSuffix(hooks[0].URL, ghub.WebhookPath) || hooks[0].Events[0] != "push" {
		t.Fatalf("hooks on GitHub: %+v", hooks)
	}
	secret := hooks[0].Secret
	// The state holds the webhook secret sealed with the cluster keyring, never in plain.
	for _, n := range c.Live() {
		for _, l := range n.fsm.Store.GithubLinks() {
			if l.SecretKeyId == "" || len(l.SecretNonce) == 0 || bytes.Contains(l.Secret, []byte(secret)) {
				t.Fatalf("link on %s holds its webhook secret unsealed: key %q", n.ID(), l.SecretKeyId)
			}
		}
	}
	// The ping GitHub sends to a new hook is answered.
	Eventually(t, 10*time.Second, func() error {
		for _, d := range gh.Deliveries() {
			if d.Event == "ping" {
				if d.Status != http.StatusOK || !strings.Contains(d.Answer, "pong") {
					return fmt.Errorf("ping answered %d %s", d.Status, d.Answer)
				}
				return nil
			}
		}
		return fmt.Errorf("no ping yet")
	})

	// The secret never leaves through the read APIs.
	get, err := componentClient(follower).Get(context.Background(), connect.NewRequest(&componentv1.GetRequest{Name: "hello"}))
	if err != nil {
		t.Fatal(err)
	}
	list, err := deployClient(follower).List(context.Background(), connect.NewRequest(&deployv1.ListRequest{Component: "hello"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []any{created, get.Msg, list.Msg} {
		b, _ := json.Marshal(m)
		pb, _ := protojson.Marshal(get.Msg)
		if strings.Contains(string(b), secret) || strings.Contains(string(pb), secret) {
			t.Fatalf("secret leaked through a read API: %s", b)
		}
	}

	// The head has no v9.toml: that deployment fails clearly, and the commit says so.
	failed := waitDeployment(t, c.Nodes[0], "hello", head, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED)
	if !strings.Contains(failed.Error, "v9.toml") {
		t.Fatalf("failure without v9.toml: %q", failed.Error)
	}
	if st := waitStatus(t, gh, head, "failure"); !strings.Contains(st.Description, "v9.toml") || st.Context != "v9/hello" {
		t.Fatalf("failure status: %+v", st)
	}

	count := func() int { return len(deploymentsOf(t, c.Leader(t), "hello")) }

	// A push to the linked branch records one deployment; its redelivery, to another node,
	// records nothing.
	sha, ds := gh.Push(testRepo, "main", "second", map[string]string{"README.md": "two"})
	if len(ds) != 1 || ds[0].Status != http.StatusAccepted || !strings.Contains(ds[0].Answer, `"deployed"`) {
		t.Fatalf("push delivery: %+v", ds)
	}
	waitDeployment(t, c.Nodes[2], "hello", sha, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED)
	before := count()
	for _, n := range c.Nodes {
		again := *ds[0]
		again.Header = ds[0].Header.Clone()
		gh.Send(&again, webhookURL(n))
		if again.Status != http.StatusAccepted || !strings.Contains(again.Answer, "duplicate") {
			t.Fatalf("redelivery to %s: %d %s", n.ID(), again.Status, again.Answer)
		}
	}
	if got := count(); got != before {
		t.Fatalf("redelivery recorded %d new deployments", got-before)
	}

	// Wrong or missing signatures: 401, nothing recorded.
	body := gh.PushPayload(testRepo, "main", sha)
	hook := &githubtest.Hook{ID: hooks[0].ID, Secret: "not-the-secret"}
	forged := gh.NewDelivery(hook, "push", body)
	unsigned := gh.NewDelivery(&githubtest.Hook{ID: hooks[0].ID}, "push", body)
	noHookID := gh.NewDelivery(hook, "push", body)
	noHookID.Header.Del("X-GitHub-Hook-ID")
	for name, d := range map[string]*githubtest.Delivery{"forged": forged, "unsigned": unsigned, "forged without hook id": noHookID} {
		gh.Send(d, webhookURL(follower))
		if d.Status != http.StatusUnauthorized {
			t.Fatalf("%s delivery: %d %s", name, d.Status, d.Answer)
		}
	}
	// Malformed JSON, even correctly signed: 400.
	real := &githubtest.Hook{ID: hooks[0].ID, Secret: secret}
	for name, d := range map[string]*githubtest.Delivery{
		"signed garbage": gh.NewDelivery(real, "push", []byte(`{"ref": "refs/heads/main", `)),
		"bad after":      gh.NewDelivery(real, "push", []byte(`{"ref":"refs/heads/main","after":"x","repository":{"full_name":"octo/hello"}}`)),
	} {
		gh.Send(d, webhookURL(c.Nodes[0]))
		if d.Status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", name, d.Status, d.Answer)
		}
	}
	garbage := gh.NewDelivery(real, "push", []byte(`not json`))
	garbage.Header.Del("X-GitHub-Hook-ID")
	if gh.Send(garbage, webhookURL(c.Nodes[1])); garbage.Status != http.StatusBadRequest {
		t.Fatalf("unsigned garbage without hook id: %d %s", garbage.Status, garbage.Answer)
	}
	// Pushes to other branches and other events: acknowledged, ignored.
	_, ds = gh.Push(testRepo, "feature", "elsewhere", map[string]string{"README.md": "three"})
	if len(ds) != 1 || ds[0].Status != http.StatusAccepted || !strings.Contains(ds[0].Answer, "ignored") {
		t.Fatalf("push to another branch: %+v", ds)
	}
	issue := gh.NewDelivery(real, "issues", []byte(`{"action":"opened","repository":{"full_name":"octo/hello"}}`))
	if gh.Send(issue, webhookURL(follower)); issue.Status != http.StatusAccepted || !strings.Contains(issue.Answer, "ignored") {
		t.Fatalf("issues event: %d %s", issue.Status, issue.Answer)
	}
	ping := gh.NewDelivery(real, "ping", []byte(`{"zen":"z","hook_id":1,"repository":{"full_name":"octo/hello"}}`))
	if gh.Send(ping, webhookURL(follower)); ping.Status != http.StatusOK || !strings.Contains(ping.Answer, "pong") {
		t.Fatalf("ping: %d %s", ping.Status, ping.Answer)
	}
	if got := count(); got != before {
		t.Fatalf("rejected or ignored deliveries recorded %d deployments", got-before)
	}
	// GET is not a delivery.
	if resp, err := http.Get(webhookURL(follower)); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", resp, err)
	}

	// Deleting the component removes its hook.
	if _, err := componentClient(c.Nodes[2]).Delete(context.Background(), connect.NewRequest(&componentv1.DeleteRequest{Name: "hello"})); err != nil {
		t.Fatal(err)
	}
	if hooks := gh.Hooks(testRepo); len(hooks) != 0 {
		t.Fatalf("hooks after delete: %+v", hooks)
	}
}

// TestGitHubLinkErrors: linking fails clearly, and creates nothing, when GitHub refuses.
func TestGitHubLinkErrors(t *testing.T) {
	c, gh := newGitHubCluster(t, 1, nil)
	gh.Commit(testRepo, "main", "one", map[string]string{"a": "b"})
	cli := componentClient(c.Nodes[0])
	ctx := context.Background()
	for name, src := range map[string]*statev1.Source{
		"no such repo":   {GithubRepo: "octo/missing", Branch: "main"},
		"no such branch": {GithubRepo: testRepo, Branch: "nope"},
	} {
		_, err := cli.Create(ctx, connect.NewRequest(&componentv1.CreateRequest{Name: "hello", Source: src}))
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "read branch") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if cs := c.Nodes[0].Store().Components(); len(cs) != 0 {
		t.Fatalf("failed links left components: %v", cs)
	}

	// Without a token, and with a token GitHub refuses.
	for name, cfg := range map[string]ghub.Config{
		"no token":  {APIURL: gh.APIURL()},
		"bad token": {APIURL: gh.APIURL(), Token: "ghp_revoked"},
	} {
		other := NewTestClusterConfig(t, 1, func(c *Config) { c.GitHub = cfg })
		_, err := componentClient(other.Nodes[0]).Create(ctx, connect.NewRequest(&componentv1.CreateRequest{Name: "hello", Source: &statev1.Source{GithubRepo: testRepo, Branch: "main"}}))
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || (name == "no token" && !strings.Contains(err.Error(), "--github-token")) {
			t.Fatalf("%s: %v", name, err)
		}
		if cs := other.Nodes[0].Store().Components(); len(cs) != 0 {
			t.Fatalf("%s: components created: %v", name, cs)
		}
	}
}

// TestGitHubFailedLinkLeavesNothing: a linked create is one Raft entry, so one that fails
// after GitHub has been touched leaves no component, link or deployment in the state, and
// no hook on GitHub.
func TestGitHubFailedLinkLeavesNothing(t *testing.T) {
	c, gh := newGitHubCluster(t, 3, nil)
	gh.Commit(testRepo, "main", "one", map[string]string{"a": "b"})
	// A name fsm refuses (it is not owner/repo to the state machine) but GitHub serves: the
	// hook is created, then the entry is refused.
	const odd = "octo/hello!"
	gh.CreateRepo(odd, "main")
	gh.Commit(odd, "main", "one", map[string]string{"a": "b"})
	ctx := context.Background()
	cli := componentClient(c.Follower(t))
	_, err := cli.Create(ctx, connect.NewRequest(&componentv1.CreateRequest{Name: "odd", Source: &statev1.Source{GithubRepo: odd, Branch: "main"}}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "owner/repo") {
		t.Fatalf("link of %s: %v", odd, err)
	}
	if hooks := gh.Hooks(odd); len(hooks) != 0 {
		t.Fatalf("the refused link left hooks on GitHub: %+v", hooks)
	}
	// GitHub refuses the hook: nothing is written at all.
	gh.RefuseHooks(testRepo, true)
	_, err = cli.Create(ctx, connect.NewRequest(&componentv1.CreateRequest{Name: "hello", Source: &statev1.Source{GithubRepo: testRepo, Branch: "main"}}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "create the webhook") {
		t.Fatalf("hook refused: %v", err)
	}
	for _, n := range c.Nodes {
		st := n.Store().State()
		if len(st.Components) != 0 || len(st.GithubLinks) != 0 || len(st.Deployments) != 0 {
			t.Fatalf("%s: failed links left %d components, %d links, %d deployments", n.ID(), len(st.Components), len(st.GithubLinks), len(st.Deployments))
		}
	}

	// The same create once GitHub allows the hook: one entry holds all three.
	gh.RefuseHooks(testRepo, false)
	created := createLinked(t, c.Follower(t), "hello")
	l := c.Leader(t)
	link, err := l.Store().GithubLink(created.Component.Id)
	if err != nil || link.HookId == 0 || created.Deployment.GetComponentId() != created.Component.Id {
		t.Fatalf("linked create: link %v %v, response %v", link, err, created)
	}
	d, _ := l.Store().Deployment(created.Deployment.Id)
	if d.CreateIndex != created.Component.CreateIndex {
		t.Fatalf("component (index %d) and deployment (index %d) written by different entries", created.Component.CreateIndex, d.CreateIndex)
	}
}

// TestGitHubContainerRepo: a container repository's files are its artifact (no compile),
// and a manifest whose runtime differs from the component's fails the deployment clearly.
func TestGitHubContainerRepo(t *testing.T) {
	c, gh := newGitHubCluster(t, 1, nil)
	manifest := "name = \"api\"\nruntime = \"container\"\n[container]\nimage = \"docker.io/library/python:3.12-alpine\"\ncommand = [\"python\", \"/app/main.py\"]\n"
	head := gh.Commit(testRepo, "main", "container", map[string]string{"v9.toml": manifest, "main.py": "print('hi')\n"})
	ctx := context.Background()
	if _, err := componentClient(c.Nodes[0]).Create(ctx, connect.NewRequest(&componentv1.CreateRequest{
		Name: "api", Runtime: statev1.Runtime_RUNTIME_CONTAINER, Source: &statev1.Source{GithubRepo: testRepo, Branch: "main"},
	})); err != nil {
		t.Fatal(err)
	}
	d := waitDeployment(t, c.Nodes[0], "api", head, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY)
	comp, _ := c.Nodes[0].Store().Component("api")
	if !strings.HasPrefix(d.ArtifactDigest, "sha256:") || comp.ActiveDeploymentId != d.Id ||
		comp.Spec.GetContainer().GetImage() != "docker.io/library/python:3.12-alpine" || d.Spec.GetContainer().GetImage() == "" {
		t.Fatalf("deployment %v, component %v", d, comp)
	}
	dir, err := c.Nodes[0].artifacts.Dir(d.ArtifactDigest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "main.py")); err != nil {
		t.Fatalf("the artifact lacks the repository's files: %v", err)
	}

	// The same repository linked as a wasm component: its runtime does not match.
	createLinked(t, c.Nodes[0], "hello")
	failed := waitDeployment(t, c.Nodes[0], "hello", head, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED)
	if !strings.Contains(failed.Error, `runtime "container"`) {
		t.Fatalf("runtime mismatch: %q", failed.Error)
	}
}

// TestGitHubRepoOverLimits: a repository over the extraction limits fails its deployment.
func TestGitHubRepoOverLimits(t *testing.T) {
	c, gh := newGitHubCluster(t, 1, func(cfg *Config) { cfg.Build.Limits = deploy.Limits{MaxFiles: 50, MaxBytes: 4096} })
	head := gh.Commit(testRepo, "main", "big", map[string]string{"v9.toml": "x", "big.bin": strings.Repeat("x", 5000)})
	createLinked(t, c.Nodes[0], "hello")
	d := waitDeployment(t, c.Nodes[0], "hello", head, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED)
	if !strings.Contains(d.Error, "limit of 4096 bytes") {
		t.Fatalf("over the size limit: %q", d.Error)
	}
	many := map[string]string{}
	for i := range 60 {
		many[fmt.Sprintf("f%d", i)] = ""
	}
	sha, _ := gh.Push(testRepo, "main", "many", many)
	d = waitDeployment(t, c.Nodes[0], "hello", sha, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED)
	if !strings.Contains(d.Error, "limit of 50 entries") {
		t.Fatalf("over the file limit: %q", d.Error)
	}
	waitStatus(t, gh, sha, "failure")
}
