package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/runtime/container"
)

// nodeContainers lists the ids of node n's containers whose labels hold all of want.
func nodeContainers(t *testing.T, client *containerd.Client, n *Node, want map[string]string) []string {
	ctx := namespaces.WithNamespace(context.Background(), container.DefaultNamespace)
	cs, err := client.Containers(ctx, fmt.Sprintf(`labels."%s"==%q`, container.LabelNode, n.ID()))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil {
			continue // removed meanwhile
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			ids = append(ids, c.ID())
		}
	}
	return ids
}

// TestContainerResumeClaimsStandby: pausing a container component leaves a standby
// container on its node, which the resume's placement claims; deleting the component
// leaves no container behind, standby or not.
func TestContainerResumeClaimsStandby(t *testing.T) {
	needContainerd(t)
	c := NewTestClusterOpts(t, 1, containerOptions())
	n := c.Nodes[0]
	mustUpload(t, n, containerDir(t, "", "standby"))
	waitServingBody(t, c.Nodes, "/hello/", "standby")
	client, err := containerd.New(testContainerd, containerd.WithDefaultNamespace(container.DefaultNamespace))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	cli := componentClient(n)
	ex := n.dp.Executor(statev1.Runtime_RUNTIME_CONTAINER).(*container.Executor)

	if _, err := cli.Pause(ctx, connect.NewRequest(&componentv1.PauseRequest{Name: "hello"})); err != nil {
		t.Fatal(err)
	}
	var standby string
	Eventually(t, 30*time.Second, func() error {
		ids := nodeContainers(t, client, n, map[string]string{container.LabelStandby: "true", container.LabelComponent: "hello"})
		if len(ids) != 1 || len(nodeContainers(t, client, n, nil)) != 1 {
			return fmt.Errorf("standby containers of the paused component: %v; all: %v", ids, nodeContainers(t, client, n, nil))
		}
		standby = ids[0]
		if held := ex.StandbyOf("hello"); held != standby {
			return fmt.Errorf("the executor holds standby %q, containerd has %s", held, standby)
		}
		return nil
	})
	if _, err := cli.Resume(ctx, connect.NewRequest(&componentv1.ResumeRequest{Name: "hello"})); err != nil {
		t.Fatal(err)
	}
	waitServingBody(t, c.Nodes, "/hello/", "standby")
	var running []string
	Eventually(t, 10*time.Second, func() (err error) {
		running, err = runningContainers(n)
		if err == nil && len(running) != 1 {
			err = fmt.Errorf("running: %v", running)
		}
		return err
	})
	if ids := nodeContainers(t, client, n, map[string]string{container.LabelPlacement: running[0]}); len(ids) != 1 || ids[0] != standby {
		t.Fatalf("the resumed placement %s runs in %v; want the standby %s", running[0], ids, standby)
	}

	if _, err := cli.Delete(ctx, connect.NewRequest(&componentv1.DeleteRequest{Name: "hello"})); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, func() error {
		if ids := nodeContainers(t, client, n, nil); len(ids) != 0 {
			return fmt.Errorf("containers left after the component was deleted: %v", ids)
		}
		return nil
	})
}
