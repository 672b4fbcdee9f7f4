package ghub

import (
	"context"
	"fmt"
	"testing"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/githubtest"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestCommitStatusLinksToConsole: with a public URL, the commit statuses a deployment posts
// carry target_url = the console's page of the component; without one, no target_url.
func TestCommitStatusLinksToConsole(t *testing.T) {
	for _, tc := range []struct{ publicURL, want string }{
		{"https://v9.example.com/", "https://v9.example.com/components/my-site"},
		{"https://v9.example.com", "https://v9.example.com/components/my-site"},
		{"", ""},
	} {
		t.Run(fmt.Sprintf("public url %q", tc.publicURL), func(t *testing.T) {
			gh := githubtest.New(t)
			const repo = "octo/site"
			gh.CreateRepo(repo, "main")
			sha := gh.Commit(repo, "main", "first", map[string]string{"README": "hi"})
			st := fsm.NewStore()
			cl := &storeCluster{st: st}
			if _, err := cl.Apply(context.Background(), &statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
				Id: "c1", Name: "my-site", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
				Spec:   &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 1},
				Source: &statev1.Source{GithubRepo: repo, Branch: "main"},
			}}}}); err != nil {
				t.Fatal(err)
			}
			s := New(Options{NodeID: "n1", DataDir: t.TempDir(), GitHub: Config{APIURL: gh.APIURL(), Token: gh.Token},
				PublicURL: tc.publicURL, State: st, Cluster: cl, Artifacts: memArtifacts{}, Logs: noLogs{}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); s.StatusLoop(ctx) }()
			defer func() { cancel(); <-done }()

			d := &statev1.Deployment{Id: "d1", ComponentId: "c1", CommitSha: sha}
			s.postStatus(ctx, d, "pending", "building on v9")
			s.postStatus(ctx, d, "success", "deployed")
			eventually(t, "statuses posted", func() error {
				if n := len(gh.Statuses(repo, sha)); n != 2 {
					return fmt.Errorf("%d statuses", n)
				}
				return nil
			})
			for _, got := range gh.Statuses(repo, sha) {
				if got.TargetURL != tc.want {
					t.Fatalf("%s status target_url %q, want %q", got.State, got.TargetURL, tc.want)
				}
			}
		})
	}
}
