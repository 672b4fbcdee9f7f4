//go:build !race

package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/wasmtest"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// TestDataPlaneScaledToZeroTrappingDeployFails: a component scaled to zero gets a version
// whose module traps on every request. Its one readiness probe fails, so the deployment is
// failed with the reason and the previous one is active again; meanwhile on-demand requests
// are answered by the previous version (no 500). A good version then rolls out and serves.
func TestDataPlaneScaledToZeroTrappingDeployFails(t *testing.T) {
	c := NewTestClusterOpts(t, 3, TestOptions{Autoscale: sched.Policy{DownCooldown: time.Second},
		Liveness: LivenessConfig{RolloutDeadline: 15 * time.Second}})
	scale := "[scale]\nmin = 0\nmax = 2\n"
	first := mustUpload(t, c.Leader(t), helloDir(t, scale+"[env]\nGREETING = \"v1\"\n"))
	waitAtZero(t, c)

	bad := helloDir(t, scale+"[env]\nGREETING = \"v1\"\n") // env is the component's: v1 answers "v1"
	if err := os.WriteFile(filepath.Join(bad, "hello.wasm"), wasmtest.Trap(), 0o644); err != nil {
		t.Fatal(err)
	}
	second := mustUpload(t, c.Follower(t), bad)
	ok, fails, i := 0, []string{}, 0
	Eventually(t, 30*time.Second, func() error {
		i++
		n := c.Nodes[i%len(c.Nodes)]
		code, body, _, err := proxyGet(n, "", "/hello/during")
		switch {
		case err == nil && code == 200 && strings.Contains(body, "hello from wasm v1"):
			ok++
		default:
			fails = append(fails, fmt.Sprintf("%s: %d %q %v", n.ID(), code, body, err))
		}
		d, err := c.Nodes[0].Store().Deployment(second.Deployment.Id)
		if err != nil {
			return err
		}
		if d.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED || !strings.Contains(d.Error, "rollout failed") {
			return fmt.Errorf("new deployment is %s (%q)", d.Status, d.Error)
		}
		if comp, _ := c.Nodes[0].Store().Component("hello"); comp.ActiveDeploymentId != first.Deployment.Id {
			return fmt.Errorf("active is %s, want the first %s", comp.ActiveDeploymentId, first.Deployment.Id)
		}
		return nil
	})
	d, _ := c.Nodes[0].Store().Deployment(second.Deployment.Id)
	t.Logf("failed deployment: %s; %d requests answered by v1 meanwhile", d.Error, ok)
	if len(fails) > 0 || ok == 0 {
		t.Fatalf("during the broken deployment: %d ok, failures %v", ok, fails)
	}

	third := mustUpload(t, c.Leader(t), helloDir(t, scale+"[env]\nGREETING = \"v3\"\n"))
	// The env is the component's, so an on-demand instance of v1 answers "v3" too: wait for
	// the probe instance of the third deployment to be reported running (Served) first.
	Eventually(t, 30*time.Second, func() error {
		d, err := c.Nodes[0].Store().Deployment(third.Deployment.Id)
		if err != nil || !d.Served || d.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY {
			return fmt.Errorf("good deployment: served=%v status=%s (%v)", d.GetServed(), d.GetStatus(), err)
		}
		return nil
	})
	waitServing(t, c.Nodes, "hello from wasm v3")
}
