package ghub

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/githubtest"
	"github.com/velocity9/v9/internal/wasmtest"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestDeletingComponentCancelsItsBuild: a component deleted while its push builds stops the
// build at once (not after the build's own timeout, on the leader's CPU), and its commit
// gets an error status that says why, instead of staying "pending"; so does the commit of a
// build that waits to serve.
func TestDeletingComponentCancelsItsBuild(t *testing.T) {
	gh := githubtest.New(t)
	const repo = "octo/slow"
	gh.CreateRepo(repo, "main")
	sha := gh.Commit(repo, "main", "first", map[string]string{
		"v9.toml": "name = \"slow\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n", "main.go": "package main\n\nfunc main() {}\n"})
	// A compiler that takes its time: it runs until the build is stopped.
	tools := t.TempDir()
	compiler, started := filepath.Join(tools, "go"), filepath.Join(tools, "started")
	if err := os.WriteFile(compiler, []byte("#!/bin/sh\n: > "+started+"\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	st := fsm.NewStore()
	var srv *httptest.Server
	s := New(Options{
		NodeID: "n1", DataDir: data, GitHub: Config{APIURL: gh.APIURL(), Token: gh.Token},
		MaxArtifactBytes: 1 << 20, APIAddr: func() string { return srv.Listener.Addr().String() },
		State: st, Cluster: &storeCluster{st: st}, Artifacts: memArtifacts{}, Logs: noLogs{},
		Build: deploy.BuildOptions{Go: compiler},
	})
	srv = httptest.NewServer(http.HandlerFunc(s.ServeWebhook))
	defer srv.Close()
	term, endTerm := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	for _, loop := range []func(context.Context){s.BuildLoop, s.StatusLoop} {
		loops.Add(1)
		go func() { defer loops.Done(); loop(term) }()
	}
	defer func() { endTerm(); loops.Wait() }()

	ctx := context.Background()
	resp, err := s.CreateLinked(ctx, &componentv1.CreateRequest{Name: "slow", Source: &statev1.Source{GithubRepo: repo, Branch: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the compiler runs", func() error {
		if _, err := os.Stat(started); err != nil {
			return err
		}
		return lastStatus(gh, repo, sha, "pending")()
	})
	ds := st.Deployments(resp.Component.Id)
	if len(ds) != 1 || ds[0].Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING {
		t.Fatalf("deployments %v", ds)
	}
	id := ds[0].Id
	if _, err := os.Stat(filepath.Join(data, "builds", id)); err != nil {
		t.Fatalf("the build's directory: %v", err)
	}

	if _, err := s.DeleteComponent(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the build stops", func() error {
		s.builds.mu.Lock()
		n := len(s.builds.running)
		s.builds.mu.Unlock()
		if n != 0 {
			return fmt.Errorf("%d builds running", n)
		}
		if _, err := os.Stat(filepath.Join(data, "builds", id)); !os.IsNotExist(err) {
			return fmt.Errorf("the build's directory is still there (%v)", err)
		}
		return nil
	})
	eventually(t, "the commit says why", deletedStatus(gh, repo, sha))

	// Built and active, waiting to serve (no node runs it here): deleted, its commit says so
	// too, rather than "pending" until the wait ends.
	const fast = "octo/fast"
	gh.CreateRepo(fast, "main")
	sha = gh.Commit(fast, "main", "first", map[string]string{
		"v9.toml": "name = \"fast\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"app.wasm\"\n", "app.wasm": string(wasmtest.Trap())})
	_, err = s.CreateLinked(ctx, &componentv1.CreateRequest{Name: "fast", Source: &statev1.Source{GithubRepo: fast, Branch: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the build is active, not serving", func() error {
		if c, err := st.Component("fast"); err != nil || c.ActiveDeploymentId == "" {
			return fmt.Errorf("component %v (%v)", c, err)
		}
		return lastStatus(gh, fast, sha, "pending")()
	})
	if _, err := s.DeleteComponent(ctx, "fast"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the commit says why", deletedStatus(gh, fast, sha))
}

// deletedStatus is a condition: the newest commit status of sha says its component was
// deleted.
func deletedStatus(gh *githubtest.Server, repo, sha string) func() error {
	return func() error {
		sts := gh.Statuses(repo, sha)
		if len(sts) == 0 || sts[len(sts)-1].State != "error" || !strings.Contains(sts[len(sts)-1].Description, "component deleted") {
			return fmt.Errorf("statuses %+v", sts)
		}
		return nil
	}
}
