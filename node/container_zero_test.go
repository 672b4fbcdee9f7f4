package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/sched"
)

// runningContainers lists the placement ids of the containers running for node n.
func runningContainers(n *Node) ([]string, error) {
	ad, ok := n.dp.Executor(statev1.Runtime_RUNTIME_CONTAINER).(v9rt.Adopter)
	if !ok {
		return nil, fmt.Errorf("%s runs no containers", n.ID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return ad.Running(ctx)
}

// TestContainerFromZero: a container component with scale.min 0 goes to zero replicas when
// idle (no container left); requests then reaching it through the proxy are held while an
// instance starts, and none fails; the traffic brings a replica back.
func TestContainerFromZero(t *testing.T) {
	needContainerd(t)
	opts := containerOptions()
	opts.Autoscale = sched.Policy{DownCooldown: time.Second}
	c := NewTestClusterOpts(t, 1, opts)
	n := c.Nodes[0]
	mustUpload(t, n, containerDir(t, "[scale]\nmin = 0\nmax = 1\n", "from zero"))
	Eventually(t, 60*time.Second, func() error {
		if comp, err := n.Store().Component("hello"); err != nil || comp.Replicas != 0 {
			return fmt.Errorf("%d replicas when idle (%v)", comp.GetReplicas(), err)
		}
		if k := len(n.Store().Placements("")); k != 0 {
			return fmt.Errorf("%d placements left", k)
		}
		if ids, err := runningContainers(n); err != nil || len(ids) != 0 {
			return fmt.Errorf("containers still running: %v %v", ids, err)
		}
		return nil
	})
	// At zero: the first requests wait for the on-demand container, then get its answer.
	code, body, h, err := proxyGet(n, "", "/hello/")
	if err != nil || code != 200 || h.Get("X-V9-Served-By") != n.ID() || !strings.Contains(body, "from zero") {
		t.Fatalf("first request at zero: %d %q %v %v", code, body, h, err)
	}
	g := startLoad(c.Nodes, 4)
	Eventually(t, 60*time.Second, func() error {
		if g.ok.Load() < 20 {
			return fmt.Errorf("%d requests served", g.ok.Load())
		}
		if comp, err := n.Store().Component("hello"); err != nil || comp.Replicas != 1 {
			return fmt.Errorf("%d replicas under load (%v)", comp.GetReplicas(), err)
		}
		return nil
	})
	g.end(t, "requests from zero")
}
