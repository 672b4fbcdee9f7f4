package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/internal/githubtest"
	"github.com/velocity9/v9/node"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
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
	_, err := acl.GitHubLogin(ctx, connect.NewRequest(&aclv1.GitHubLoginRequest{GithubToken: "gho_forged"}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "GitHub did not accept the token") {
		t.Fatalf("forged GitHub token: %v", err)
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
