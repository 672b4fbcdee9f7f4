//go:build !race

package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/velocity9/v9/sched"
)

// replicas reads the component's replica count on node n. It returns an error rather than
// failing the test: it is called inside Eventually polls.
func replicas(n *Node) (uint32, error) {
	comp, err := n.Store().Component("hello")
	if err != nil {
		return 0, err
	}
	return comp.Replicas, nil
}

// waitAtZero waits until every node's replica of "hello" says zero replicas and no placements.
func waitAtZero(t *testing.T, c *TestCluster) {
	t.Helper()
	Eventually(t, 30*time.Second, func() error {
		for _, n := range c.Nodes {
			if r, err := replicas(n); err != nil || r != 0 {
				return fmt.Errorf("%s: %d replicas when idle (%v)", n.ID(), r, err)
			}
			if k := len(n.Store().Placements("")); k != 0 {
				return fmt.Errorf("%s: %d placements left", n.ID(), k)
			}
		}
		return nil
	})
}

// wantReplicas checks the replica count the leader committed, as read on the leader.
func wantReplicas(c *TestCluster, ok func(uint32) bool) error {
	for _, n := range c.Live() {
		if !n.IsLeader() {
			continue
		}
		r, err := replicas(n)
		if err != nil {
			return err
		}
		if !ok(r) {
			return fmt.Errorf("%d replicas on the leader %s", r, n.ID())
		}
		return nil
	}
	return fmt.Errorf("no leader")
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
		return wantReplicas(c, func(r uint32) bool { return r == 3 })
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
		return wantReplicas(c, func(r uint32) bool { return r == 1 })
	})
}

func TestDataPlaneScaleToZero(t *testing.T) {
	c := NewTestClusterOpts(t, 3, TestOptions{Autoscale: sched.Policy{DownCooldown: time.Second}})
	mustUpload(t, c.Leader(t), helloDir(t, "[scale]\nmin = 0\nmax = 2\n"))
	// Every node must have seen the scale-down: the one asked below routes from its own
	// replica.
	waitAtZero(t, c)
	// Scaled to zero: the first request is served on demand by the node it reaches.
	Eventually(t, 5*time.Second, func() error {
		code, body, h, err := proxyGet(c.Nodes[1], "", "/hello/first")
		if err != nil || code != 200 || h.Get("X-V9-Served-By") != c.Nodes[1].ID() {
			return fmt.Errorf("first request at zero replicas: %d %q %v %v", code, body, h, err)
		}
		return nil
	})
	// Traffic brings a replica back (the first request may have done so already: wait for
	// the load to have been served too).
	g := startLoad(c.Nodes, 2)
	Eventually(t, 20*time.Second, func() error {
		if g.ok.Load() == 0 {
			return fmt.Errorf("no request of the load served yet")
		}
		return wantReplicas(c, func(r uint32) bool { return r >= 1 })
	})
	g.end(t, "requests while scaling from zero")
}
