package main

import (
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/velocity9/v9/runtime/container"
)

// reaperCommand is node.Config.ReaperCommand for this binary: it runs `v9 internal-reaper`.
func reaperCommand(socket, namespace, nodeID string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, "internal-reaper", "--containerd-socket", socket, "--namespace", namespace, "--id", nodeID)
}

// newReaperCmd is the fence an agent starts beside itself (container.Reap); not for users.
func newReaperCmd() *cobra.Command {
	var socket, namespace, id string
	cmd := &cobra.Command{
		Use:    "internal-reaper",
		Short:  "Kill a node's exclusive containers when its agent dies (started by the agent)",
		Hidden: true,
		Args:   exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return container.Reap(cmd.InOrStdin(), socket, namespace, id)
		},
	}
	f := cmd.Flags()
	f.StringVar(&socket, "containerd-socket", "", "containerd socket")
	f.StringVar(&namespace, "namespace", container.DefaultNamespace, "containerd namespace")
	f.StringVar(&id, "id", "", "node id")
	return cmd
}
