package ghub

import (
	"context"
	"testing"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/githubtest"
	"github.com/velocity9/v9/internal/wasmtest"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestPollRecordsTheBranchHead: a poll reads the linked branch's head through the API and
// records a deployment of a commit no webhook announced, once however often it polls.
func TestPollRecordsTheBranchHead(t *testing.T) {
	gh := githubtest.New(t)
	const repo = "octo/polled"
	gh.CreateRepo(repo, "main")
	files := map[string]string{"v9.toml": "name = \"polled\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"app.wasm\"\n", "app.wasm": string(wasmtest.Trap())}
	gh.Commit(repo, "main", "first", files)
	st := fsm.NewStore()
	s := newStoreService(t, gh, &storeCluster{st: st}, nil)
	ctx := context.Background()
	resp, err := s.CreateLinked(ctx, &componentv1.CreateRequest{Name: "polled", Source: &statev1.Source{GithubRepo: repo, Branch: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	head := gh.Commit(repo, "main", "second", files) // committed, never delivered
	deploymentsOf := func(sha string) (n int) {
		for _, d := range st.Deployments(resp.Component.Id) {
			if d.CommitSha == sha {
				n++
			}
		}
		return n
	}
	links := st.GithubLinks()
	if len(links) != 1 || deploymentsOf(head) != 0 {
		t.Fatalf("links %v, deployments %v", links, st.Deployments(resp.Component.Id))
	}
	s.pollOnce(ctx, links[0])
	s.pollOnce(ctx, links[0])
	if n := deploymentsOf(head); n != 1 {
		t.Fatalf("%d deployments of the polled head, want 1: %v", n, st.Deployments(resp.Component.Id))
	}
}
