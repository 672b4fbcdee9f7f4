//go:build !race

package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/velocity9/v9/sched"
)

func replicas(t *testing.T, c *TestCluster) uint32 {
	t.Helper()
	comp, err := c.Live()[0].Store().Component("hello")
	if err != nil {
		t.Fatal(err)
	}
	return comp.Replicas
}

// TestDataPlaneAutoscale drives a wasm component with a load generator: it scales up toward
// max; idle, it scales back to min. A component with min 0 goes to zero replicas when idle
// and still answers its first request (served on demand), then gets a replica back.
func TestDataPlaneAutoscale(t *testing.T) {
	c := NewTestClusterOpts(t, 3, TestOptions{Autoscale: sched.Policy{DownCooldown: 2 * time.Second}})
	mustUpload(t, c.Leader(t), helloDir(t, "[scale]\nmin = 1\nmax = 3\n[limits]\nconcurrency = 1\n"))
	waitServing(t, c.Nodes, "hello from wasm")
	g := startLoad(c.Nodes, 12)
	Eventually(t, 30*time.Second, func() error {
		if r := replicas(t, c); r != 3 {
			return fmt.Errorf("replicas under load: %d", r)
		}
		return nil
	})
	Eventually(t, 30*time.Second, func() error {
		if k := len(c.Nodes[0].Store().Placements("")); k != 3 {
			return fmt.Errorf("%d placements", k)
		}
		_, err := runningPlacement(c)
		return err
	})
	g.end(t, "requests while scaling up")
	Eventually(t, 30*time.Second, func() error {
		if r := replicas(t, c); r != 1 {
			return fmt.Errorf("replicas when idle: %d", r)
		}
		return nil
	})
}

func TestDataPlaneScaleToZero(t *testing.T) {
	c := NewTestClusterOpts(t, 3, TestOptions{Autoscale: sched.Policy{DownCooldown: time.Second}})
	mustUpload(t, c.Leader(t), helloDir(t, "[scale]\nmin = 0\nmax = 2\n"))
	Eventually(t, 30*time.Second, func() error {
		if r := replicas(t, c); r != 0 {
			return fmt.Errorf("replicas when idle: %d", r)
		}
		if k := len(c.Nodes[0].Store().Placements("")); k != 0 {
			return fmt.Errorf("%d placements left", k)
		}
		return nil
	})
	// Scaled to zero: the first request is served on demand by the node it reaches.
	code, body, h, err := proxyGet(c.Nodes[1], "", "/hello/first")
	if err != nil || code != 200 || h.Get("X-V9-Served-By") != c.Nodes[1].ID() {
		t.Fatalf("first request at zero replicas: %d %q %v %v", code, body, h, err)
	}
	// Traffic brings a replica back.
	g := startLoad(c.Nodes, 2)
	Eventually(t, 20*time.Second, func() error {
		if r := replicas(t, c); r < 1 {
			return fmt.Errorf("replicas with traffic: %d", r)
		}
		return nil
	})
	g.end(t, "requests while scaling from zero")
}
