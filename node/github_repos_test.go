package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/ghub"
	"github.com/velocity9/v9/internal/githubtest"
	githubv1 "github.com/velocity9/v9/rpc/gen/v9/github/v1"
	"github.com/velocity9/v9/rpc/gen/v9/github/v1/githubv1connect"
)

// TestGitHubStartPageReads: a user signed in with GitHub lists their repositories, a
// repository's branches and whether a branch has a deployable v9.toml, through any node,
// with the GitHub grant their session keeps sealed in the state; a caller whose
// credentials keep no grant is told to sign in with GitHub; signing out drops the grant.
func TestGitHubStartPageReads(t *testing.T) {
	gh := githubtest.New(t)
	gh.CreateRepo("octocat/hello", "main")
	gh.Commit("octocat/hello", "main", "v1", map[string]string{"v9.toml": "name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"hello.wasm\"\n", "hello.wasm": "x"})
	gh.Commit("octocat/hello", "dev", "wip", map[string]string{"README": "no manifest"})
	gh.CreateRepo("octocat/broken", "main")
	gh.Commit("octocat/broken", "main", "bad", map[string]string{"v9.toml": "name = \"Bad Name\"\nruntime = \"wasm\"\n"})
	c := NewTestClusterConfig(t, 3, func(cfg *Config) {
		signInConfig(gh, time.Hour)(cfg)
		cfg.GitHub = ghub.Config{APIURL: gh.APIURL(), Token: gh.Token}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	gh.SignInAs("octocat")
	b := newBrowser(t)
	if code, final, body := b.signIn(t, c.Nodes[0].APIAddr(), "/start"); code != http.StatusOK {
		t.Fatalf("sign-in ended at %s with %d: %s", final, code, body)
	}
	// The grant is in the state sealed, never in the clear.
	Eventually(t, 10*time.Second, func() error {
		var sealed int
		for _, k := range c.Nodes[1].Tokens() {
			if len(k.GithubToken) > 0 {
				sealed++
				if bytes.Contains(k.GithubToken, []byte("gho_")) || k.GithubTokenKeyId == "" {
					t.Fatalf("the session's GitHub grant is not sealed: %q key %q", k.GithubToken, k.GithubTokenKeyId)
				}
			}
		}
		if sealed != 1 {
			return fmt.Errorf("%d sessions keep a GitHub grant, want 1", sealed)
		}
		return nil
	})

	// Another node opens it (it fetches the key it may lack from its peers).
	gs := githubv1connect.NewGitHubServiceClient(b.Client, "http://"+c.Nodes[2].APIAddr())
	var repos *connect.Response[githubv1.ListRepositoriesResponse]
	Eventually(t, 20*time.Second, func() error {
		var err error
		repos, err = gs.ListRepositories(ctx, connect.NewRequest(&githubv1.ListRepositoriesRequest{}))
		return err
	})
	if len(repos.Msg.Repositories) != 2 || repos.Msg.Repositories[0].FullName != "octocat/broken" || repos.Msg.Repositories[1].DefaultBranch != "main" || repos.Msg.More {
		t.Fatalf("repositories: %v", repos.Msg)
	}
	br, err := gs.ListBranches(ctx, connect.NewRequest(&githubv1.ListBranchesRequest{Repo: "octocat/hello"}))
	if err != nil || len(br.Msg.Branches) != 2 || br.Msg.Branches[1].Name != "main" || br.Msg.Branches[1].Sha != gh.Head("octocat/hello", "main") {
		t.Fatalf("branches: %v %v", br, err)
	}
	for _, tc := range []struct {
		repo, branch, name, problem string
		found                       bool
	}{
		{"octocat/hello", "main", "hello", "", true},
		{"octocat/hello", "dev", "", "has no v9.toml", false},
		{"octocat/broken", "main", "", "name", true},
	} {
		m, err := gs.CheckManifest(ctx, connect.NewRequest(&githubv1.CheckManifestRequest{Repo: tc.repo, Branch: tc.branch}))
		if err != nil {
			t.Fatalf("CheckManifest %s@%s: %v", tc.repo, tc.branch, err)
		}
		got := ""
		if len(m.Msg.Problems) > 0 {
			got = m.Msg.Problems[0]
		}
		if m.Msg.Found != tc.found || m.Msg.Name != tc.name || (tc.problem == "") != (got == "") || !bytes.Contains([]byte(got), []byte(tc.problem)) {
			t.Fatalf("CheckManifest %s@%s: %v", tc.repo, tc.branch, m.Msg)
		}
	}
	if _, err := gs.ListBranches(ctx, connect.NewRequest(&githubv1.ListBranchesRequest{Repo: "octocat/nope"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("branches of a missing repository: %v, want NotFound", err)
	}

	// A caller whose credentials keep no grant (here: no credentials, on a cluster where
	// everyone is admin until tokens exist) is told to sign in with GitHub.
	_, err = githubv1connect.NewGitHubServiceClient(http.DefaultClient, "http://"+c.Nodes[0].APIAddr()).
		ListRepositories(ctx, connect.NewRequest(&githubv1.ListRepositoriesRequest{}))
	if code := connect.CodeOf(err); code != connect.CodeFailedPrecondition && code != connect.CodeUnauthenticated {
		t.Fatalf("listing without a GitHub session: %v", err)
	}
	var ce *connect.Error
	if errors.As(err, &ce) && connect.CodeOf(err) == connect.CodeFailedPrecondition && !bytes.Contains([]byte(ce.Message()), []byte("sign in to the console with GitHub")) {
		t.Fatalf("the refusal does not say what to do: %v", err)
	}
}
