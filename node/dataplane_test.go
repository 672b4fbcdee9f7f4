// The data-plane tests compile a Go-built wasm module (2.6 MB): two seconds normally, over
// thirty under the race detector, which instruments wazero's compiler. They run without
// -race; `make test` runs them in a second pass.

//go:build !race

package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

var (
	helloOnce sync.Once
	helloWasm []byte
	helloErr  error
)

// helloDir returns a fresh copy of examples/hello-wasm with hello.wasm built, and the given
// extra manifest lines appended.
func helloDir(t *testing.T, extra string) string {
	t.Helper()
	return helloDirTB(t, extra)
}

func helloDirTB(t testing.TB, extra string) string {
	t.Helper()
	helloOnce.Do(func() { helloWasm, helloErr = buildExample("../examples/hello-wasm") })
	if helloErr != nil {
		t.Fatal(helloErr)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.wasm"), helloWasm, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := "name = \"hello\"\nruntime = \"wasm\"\n" + extra + "\n[wasm]\nmodule = \"hello.wasm\"\n"
	if err := os.WriteFile(filepath.Join(dir, "v9.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildExample builds an example's module for wasip1 with the given extra go build flags.
func buildExample(dir string, flags ...string) ([]byte, error) {
	out := filepath.Join(os.TempDir(), fmt.Sprintf("v9-%s-%d.wasm", filepath.Base(dir), os.Getpid()))
	defer os.Remove(out)
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %v\n%s", dir, err, b)
	}
	return os.ReadFile(out)
}

// waitServing waits until every node's proxy answers 200 on /hello/x with a body containing
// want.
func waitServing(t testing.TB, nodes []*Node, want string) {
	t.Helper()
	waitServingBody(t, nodes, "/hello/x", want)
}

func TestDataPlaneWasmServesThroughEveryProxy(t *testing.T) {
	c := NewTestCluster(t, 3)
	resp := mustUpload(t, c.Follower(t), helloDir(t, "[env]\nGREETING = \"hi\"\n"))
	if resp.Deployment.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY || resp.Component.ActiveDeploymentId != resp.Deployment.Id {
		t.Fatalf("upload response: %v", resp)
	}
	waitServing(t, c.Nodes, "hello from wasm hi /x")
	for _, n := range c.Nodes {
		code, body, _, err := proxyGet(n, "hello.localhost", "/by/host")
		if err != nil || code != 200 || body != "hello from wasm hi /by/host\n" {
			t.Fatalf("%s by host: %d %q %v", n.ID(), code, body, err)
		}
	}
	if code, _, _, _ := proxyGet(c.Nodes[0], "", "/nope/"); code != 404 {
		t.Fatalf("unknown component: %d", code)
	}

	// Two replicas on three nodes: the node without one spreads requests over both.
	cli := componentClient(c.Nodes[0])
	if _, err := cli.UpdateSpec(context.Background(), connect.NewRequest(&componentv1.UpdateSpecRequest{Name: "hello", Spec: withMax(resp.Component.Spec, 3)})); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Scale(context.Background(), connect.NewRequest(&componentv1.ScaleRequest{Name: "hello", Replicas: 2})); err != nil {
		t.Fatal(err)
	}
	var spare *Node
	Eventually(t, 20*time.Second, func() error {
		running := map[string]bool{}
		for _, p := range c.Nodes[0].Store().Placements("") {
			if p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN && p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
				running[p.NodeId] = true
			}
		}
		if len(running) != 2 {
			return fmt.Errorf("running on %v", running)
		}
		for _, n := range c.Nodes {
			if !running[n.ID()] {
				spare = n
			}
		}
		return nil
	})
	Eventually(t, 10*time.Second, func() error {
		servedBy := map[string]int{}
		for i := 0; i < 20; i++ {
			code, _, h, err := proxyGet(spare, "", "/hello/")
			if err != nil || code != 200 {
				return fmt.Errorf("via %s: %d %v", spare.ID(), code, err)
			}
			servedBy[h.Get("X-V9-Served-By")]++
		}
		if len(servedBy) != 2 || servedBy[spare.ID()] != 0 {
			return fmt.Errorf("served by %v", servedBy)
		}
		return nil
	})

	// Pause: 503 everywhere; resume: 200 again.
	if _, err := cli.Pause(context.Background(), connect.NewRequest(&componentv1.PauseRequest{Name: "hello"})); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() error {
		for _, n := range c.Nodes {
			if code, _, h, _ := proxyGet(n, "", "/hello/"); code != 503 || h.Get("Retry-After") == "" {
				return fmt.Errorf("%s paused: %d", n.ID(), code)
			}
		}
		return nil
	})
	if _, err := cli.Resume(context.Background(), connect.NewRequest(&componentv1.ResumeRequest{Name: "hello"})); err != nil {
		t.Fatal(err)
	}
	waitServing(t, c.Nodes, "hello from wasm hi")
}

func withMax(s *statev1.ComponentSpec, max uint32) *statev1.ComponentSpec {
	s.ScaleMax = max
	return s
}

func TestDataPlaneNewDeploymentReplacesOld(t *testing.T) {
	c := NewTestCluster(t, 3)
	mustUpload(t, c.Leader(t), helloDir(t, "[env]\nGREETING = \"v1\"\n"))
	waitServing(t, c.Nodes, "hello from wasm v1")
	// The rollout from v1 to v2 happens under continuous load: no request may fail.
	g := startLoad(c.Nodes, 6)
	second := mustUpload(t, c.Follower(t), helloDir(t, "[env]\nGREETING = \"v2\"\n"))
	waitServing(t, c.Nodes, "hello from wasm v2")
	// The old deployment's placements are stopped and then removed.
	Eventually(t, 10*time.Second, func() error {
		for _, p := range c.Nodes[0].Store().Placements("") {
			if p.DeploymentId != second.Deployment.Id {
				return fmt.Errorf("old placement %s still present (%s/%s)", p.Id, p.Desired, p.Observed)
			}
		}
		return nil
	})
	g.end(t, "requests during the rollout")
	ds, _, err := c.Nodes[1].Deployments(context.Background(), "hello", 0, 0)
	if err != nil || len(ds) != 2 || ds[0].Id != second.Deployment.Id {
		t.Fatalf("history: %v %v", ds, err)
	}

	// Deleting the component stops it everywhere and frees its artifacts.
	if _, err := componentClient(c.Nodes[2]).Delete(context.Background(), connect.NewRequest(&componentv1.DeleteRequest{Name: "hello"})); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() error {
		for _, n := range c.Nodes {
			if code, _, _, _ := proxyGet(n, "", "/hello/"); code != 404 {
				return fmt.Errorf("%s still answers %d", n.ID(), code)
			}
			if k := n.dp.Running("hello"); k != 0 {
				return fmt.Errorf("%s still runs %d instances", n.ID(), k)
			}
		}
		return nil
	})
	for _, n := range c.Nodes {
		if _, err := n.dp.GC(); err != nil {
			t.Fatal(err)
		}
		if list, _ := n.artifacts.List(); len(list) != 0 {
			t.Fatalf("%s keeps artifacts of a deleted component: %v", n.ID(), list)
		}
	}
}

func TestDataPlaneBadUploadsFailClearly(t *testing.T) {
	c := NewTestCluster(t, 3)
	n := c.Follower(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	notWasm := helloDir(t, "")
	os.WriteFile(filepath.Join(notWasm, "hello.wasm"), []byte("#!/bin/sh\necho not wasm\n"), 0o644)
	_, err := upload(ctx, n, notWasm)
	if err == nil || !strings.Contains(err.Error(), "not a WebAssembly module") {
		t.Fatalf("non-wasm module: %v", err)
	}
	Eventually(t, 5*time.Second, func() error {
		ds, _, err := n.Deployments(ctx, "hello", 0, 0)
		if err != nil || len(ds) != 1 || ds[0].Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED || !strings.Contains(ds[0].Error, "not a WebAssembly") {
			return fmt.Errorf("deployment history: %v %v", ds, err)
		}
		return nil
	})

	noManifest := helloDir(t, "")
	os.Remove(filepath.Join(noManifest, "v9.toml"))
	if _, err := upload(ctx, n, noManifest); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "v9.toml") {
		t.Fatalf("missing manifest: %v", err)
	}
	badKey := helloDir(t, "colour = \"blue\"\n")
	if _, err := upload(ctx, n, badKey); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown key: %v", err)
	}
	missing := helloDir(t, "")
	os.Remove(filepath.Join(missing, "hello.wasm"))
	if _, err := upload(ctx, n, missing); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "hello.wasm") {
		t.Fatalf("missing module: %v", err)
	}
}

func TestDataPlaneSurvivorServesWithoutQuorum(t *testing.T) {
	c := NewTestCluster(t, 3)
	mustUpload(t, c.Leader(t), helloDir(t, "[scale]\nmin = 1\nmax = 3\n"))
	cli := componentClient(c.Nodes[0])
	if _, err := cli.Scale(context.Background(), connect.NewRequest(&componentv1.ScaleRequest{Name: "hello", Replicas: 3})); err != nil {
		t.Fatal(err)
	}
	waitServing(t, c.Nodes, "hello from wasm")
	Eventually(t, 20*time.Second, func() error {
		for _, n := range c.Nodes {
			if n.dp.Running("hello") == 0 {
				return fmt.Errorf("%s runs no instance yet", n.ID())
			}
		}
		return nil
	})
	leader := c.Leader(t)
	var survivor *Node
	for _, n := range c.Nodes {
		if n != leader {
			survivor = n
		}
	}
	for i, n := range c.Nodes {
		if n != survivor {
			c.Kill(i)
		}
	}
	for i := 0; i < 50; i++ {
		code, body, _, err := proxyGet(survivor, "", "/hello/alone")
		if err != nil || code != 200 || !strings.Contains(body, "/alone") {
			t.Fatalf("request %d through the survivor without quorum: %d %q %v", i, code, body, err)
		}
	}
}
