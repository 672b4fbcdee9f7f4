package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/ghub"
	"github.com/velocity9/v9/internal/githubtest"
	"github.com/velocity9/v9/node"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestCLIGitHub links components to a fake GitHub through the CLI: with a webhook, and
// polling; shows build logs; refuses a rollback with nothing to roll back to.
func TestCLIGitHub(t *testing.T) {
	gh := githubtest.New(t)
	gh.CreateRepo("octo/site", "main")
	head := gh.Commit("octo/site", "main", "first", map[string]string{"README.md": "no manifest"})
	c := node.NewTestClusterConfig(t, 3, func(cfg *node.Config) {
		cfg.GitHub = ghub.Config{APIURL: gh.APIURL(), Token: gh.Token}
	})
	addr := c.Follower(t).APIAddr()
	cli := func(args ...string) []string { return append([]string{"--addr", addr}, args...) }

	out := mustCLI(t, cli("component", "create", "site", "--github", "octo/site")...)
	if !strings.Contains(out.stdout, "octo/site@main") || !strings.Contains(out.stdout, "deploying "+head[:12]) {
		t.Fatalf("create output: %s", out)
	}
	if hooks := gh.Hooks("octo/site"); len(hooks) != 1 {
		t.Fatalf("hooks: %+v", hooks)
	}
	var failed *statev1.Deployment
	node.Eventually(t, 30*time.Second, func() error {
		var res deployv1.ListResponse
		decode(t, mustCLI(t, cli("--json", "deployments", "list", "site")...), &res)
		if ds := res.GetDeployments(); len(ds) == 1 && ds[0].GetStatus() == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
			failed = ds[0]
			return nil
		}
		return fmt.Errorf("deployments: %v", res.GetDeployments())
	})
	list := mustCLI(t, cli("deployments", "list", "site")...)
	if !strings.Contains(list.stdout, "v9.toml not found") || !strings.Contains(list.stdout, head[:7]) {
		t.Fatalf("list shows no failure reason: %s", list)
	}
	logs := mustCLI(t, cli("deployments", "logs", failed.GetId())...)
	if !strings.Contains(logs.stdout, "failed") || !strings.Contains(logs.stdout, "FAILED: no v9.toml") || !strings.Contains(logs.stdout, "octo/site@"+head) {
		t.Fatalf("build log: %s", logs)
	}
	failCLI(t, "no active deployment", cli("component", "rollback", "site")...)
	failCLI(t, "is failed", cli("component", "rollback", "site", "--to", failed.GetId())...)

	// Polling: no webhook; a commit is found through the API.
	mustCLI(t, cli("component", "create", "polled", "--github", "octo/site", "--poll", "1s")...)
	if hooks := gh.Hooks("octo/site"); len(hooks) != 1 {
		t.Fatalf("a polling link created a hook: %+v", hooks)
	}
	next := gh.Commit("octo/site", "main", "second", map[string]string{"README.md": "still none"})
	node.Eventually(t, 30*time.Second, func() error {
		var res deployv1.ListResponse
		decode(t, mustCLI(t, cli("--json", "deployments", "list", "polled")...), &res)
		for _, d := range res.GetDeployments() {
			if d.GetCommitSha() == next && d.GetDeliveryId() == "poll:"+next {
				return nil
			}
		}
		return fmt.Errorf("no deployment of the polled commit: %v", res.GetDeployments())
	})

	failCLI(t, "--poll needs --github", cli("component", "create", "x", "--runtime", "wasm", "--poll", "5s")...)
	mustCLI(t, cli("component", "delete", "site")...)
	if hooks := gh.Hooks("octo/site"); len(hooks) != 0 {
		t.Fatalf("hooks after delete: %+v", hooks)
	}
}
