package container

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
)

// Reap is the fence for exclusive containers outside the agent. Containers outlive their
// agent on purpose (the next agent adopts them), but an exclusive one must not run unfenced
// while its agent is gone: another node may start it after the leader's TTL. The agent
// starts a reaper process holding the read end of a pipe whose write end only the agent
// has; when the agent dies, however it dies, the kernel closes the pipe and Reap, reading
// EOF, SIGKILLs every exclusive container of the node. It returns after that, or with an
// error if containerd cannot be reached.
func Reap(alive io.Reader, socket, namespace, nodeID string) error {
	_, _ = io.Copy(io.Discard, alive) // blocks until the agent is gone
	if namespace == "" {
		namespace = DefaultNamespace
	}
	client, err := containerd.New(socket, containerd.WithDefaultNamespace(namespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("reaper: connect to containerd: %w", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), namespace), 10*time.Second)
	defer cancel()
	cs, err := client.Containers(ctx, fmt.Sprintf(`labels."%s"==%s,labels."%s"==true`, LabelNode, nodeID, LabelExclusive))
	if err != nil {
		return fmt.Errorf("reaper: list containers: %w", err)
	}
	for _, c := range cs {
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue // no task: nothing runs
		}
		_ = task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll)
	}
	return nil
}
