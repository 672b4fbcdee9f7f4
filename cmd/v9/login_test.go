package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/ghub"
	"github.com/velocity9/v9/internal/githubtest"
	"github.com/velocity9/v9/node"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	githubv1 "github.com/velocity9/v9/rpc/gen/v9/github/v1"
	"github.com/velocity9/v9/rpc/gen/v9/github/v1/githubv1connect"
)

// loginFails runs `v9 login` and wants exit 1 with want in the error.
func loginFails(t *testing.T, want string, args ...string) {
	t.Helper()
	r := runCLI(t, args...)
	if r.code == 0 || !strings.Contains(r.stderr, "error: ") || !strings.Contains(r.stderr, want) {
		t.Fatalf("want a failure and %q, got %s", want, r)
	}
}

// TestCLIGitHubLogin signs in with GitHub's device flow through `v9 login` against the fake
// GitHub: the token file is written (0600) and works; a user the cluster does not allow, an
// expired device code and a GitHub token GitHub does not know are refused clearly.
func TestCLIGitHubLogin(t *testing.T) {
	gh := githubtest.New(t)
	c := node.NewTestClusterConfig(t, 3, func(cfg *node.Config) {
		id, secret := gh.OAuthApp()
		cfg.SignIn = auth.GitHubConfig{ClientID: id, ClientSecret: secret, WebURL: gh.WebURL(), APIURL: gh.APIURL(),
			AllowedUsers: []string{"octocat"}}
		cfg.GitHub = ghub.Config{APIURL: gh.APIURL(), Token: gh.Token}
	})
	addr := c.Follower(t).APIAddr()
	cli := func(args ...string) []string { return append([]string{"--addr", addr}, args...) }
	t.Setenv("V9_TOKEN", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())

	gh.ApproveDevicesAs("octocat")
	r := mustCLI(t, cli("login")...)
	if !strings.Contains(r.stderr, gh.WebURL()+"/login/device") || !strings.Contains(r.stderr, "enter the code") {
		t.Fatalf("login did not say where to enter the code: %s", r)
	}
	if !strings.Contains(r.stdout, "logged in as GitHub user octocat (role developer") {
		t.Fatalf("login printed %s", r)
	}
	if _, devices, _, pending := gh.OAuthCounts(); devices != 1 || pending < 1 {
		t.Fatalf("device flow: %d tokens issued, %d pending answers", devices, pending)
	}
	path := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "v9", "token")
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file %s: %v, %v", path, st, err)
	}
	mustCLI(t, cli("component", "create", "gh", "--runtime", "wasm")...)

	// The device flow's GitHub grant is kept, sealed, with the v9 token, as the console's
	// sign-in keeps it with the session: the Start flow lists the user's repositories for a
	// CLI-signed-in user too. An API token keeps none; no read returns the GitHub token.
	gh.CreateRepo("octocat/hello-v9", "main")
	secret, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	repos := githubv1connect.NewGitHubServiceClient(http.DefaultClient, "http://"+addr)
	listAs := func(token string) (*githubv1.ListRepositoriesResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req := connect.NewRequest(&githubv1.ListRepositoriesRequest{})
		req.Header().Set("Authorization", "Bearer "+token)
		res, err := repos.ListRepositories(ctx, req)
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	listed, err := listAs(strings.TrimSpace(string(secret)))
	if err != nil || !slices.ContainsFunc(listed.GetRepositories(), func(r *githubv1.Repository) bool { return r.GetFullName() == "octocat/hello-v9" }) {
		t.Fatalf("a CLI-signed-in user lists repositories: %v, %v", listed, err)
	}
	if _, err := listAs(node.TestToken); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("an API token lists repositories: %v, want FailedPrecondition", err)
	}
	for _, args := range [][]string{{"--json", "token", "list"}, {"--json", "audit"}} {
		if out := mustCLI(t, cli(append([]string{"--token", node.TestToken}, args...)...)...); strings.Contains(out.stdout, "gho_") {
			t.Fatalf("%v shows the GitHub token:\n%s", args, out.stdout)
		}
	}
	audit := mustCLI(t, cli("--token", node.TestToken, "audit")...)
	if !strings.Contains(audit.stdout, "user:octocat") {
		t.Fatalf("audit does not name the GitHub user:\n%s", audit)
	}

	// A GitHub user the cluster does not let in.
	gh.ApproveDevicesAs("mallory")
	loginFails(t, "GitHub user mallory may not sign in", cli("login")...)

	// Nobody enters the code before it expires.
	gh.ApproveDevicesAs("")
	gh.SetDeviceCodeTTL(time.Second)
	loginFails(t, "the code expired before it was entered", cli("login")...)

	// The cluster asks GitHub who holds a token; it never takes a client's word.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acl := aclv1connect.NewACLServiceClient(http.DefaultClient, "http://"+addr)
	_, err = acl.GitHubLogin(ctx, connect.NewRequest(&aclv1.GitHubLoginRequest{GithubToken: "gho_forged"}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "GitHub did not accept the token") {
		t.Fatalf("forged GitHub token: %v", err)
	}
	// Nor a token GitHub did issue, for a user the cluster lets in, but to another app (or
	// a personal access token): an app the user once authorized must not sign them in here.
	_, err = acl.GitHubLogin(ctx, connect.NewRequest(&aclv1.GitHubLoginRequest{GithubToken: gh.ForeignToken("octocat")}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "not issued to this cluster's OAuth app") {
		t.Fatalf("another app's GitHub token: %v", err)
	}
	// octocat's login is bound to octocat's GitHub user id: after a rename, whoever takes
	// the freed login is refused, naming both ids, until an admin drops the binding.
	octoID := gh.UserID("octocat")
	bindings := mustCLI(t, cli("--token", node.TestToken, "acl", "bindings")...)
	if !strings.Contains(bindings.stdout, fmt.Sprintf("octocat  %d", octoID)) {
		t.Fatalf("acl bindings:\n%s", bindings)
	}
	gh.Rename("octocat", "octocat-renamed")
	gh.SetDeviceCodeTTL(time.Minute)
	gh.ApproveDevicesAs("octocat")
	loginFails(t, fmt.Sprintf("GitHub login octocat is bound to GitHub user id %d (the first to sign in with it here), but GitHub user id %d holds it now", octoID, gh.UserID("octocat")), cli("login")...)
	failCLI(t, "admin role", cli("acl", "bindings")...) // the token file is octocat's (a developer)
	unbound := mustCLI(t, cli("--token", node.TestToken, "acl", "unbind", "octocat")...)
	if !strings.Contains(unbound.stdout, fmt.Sprintf("no longer bound to user id %d", octoID)) {
		t.Fatalf("acl unbind:\n%s", unbound)
	}
	if r := mustCLI(t, cli("login")...); !strings.Contains(r.stdout, "logged in as GitHub user octocat") {
		t.Fatalf("the new holder of octocat once unbound: %s", r)
	}
}

// TestCLILoginWithoutGitHub: on a cluster without GitHub sign-in, `v9 login` says to use a
// token.
func TestCLILoginWithoutGitHub(t *testing.T) {
	c := node.NewTestCluster(t, 1)
	t.Setenv("V9_TOKEN", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	failCLI(t, "does not sign users in with GitHub", "--addr", c.Nodes[0].APIAddr(), "login")
}
