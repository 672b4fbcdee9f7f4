package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os/exec"
	"syscall"
	"time"
)

// containerdAdvice checks, before a node starts, that containerd answers on socket, and
// when it does not returns what a person should know and do: the node still starts and
// runs wasm components only. It returns "" when the socket accepts a connection, or when
// no socket is configured (the user asked for wasm only).
func containerdAdvice(socket string, dev bool) string {
	if socket == "" {
		return ""
	}
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err == nil {
		c.Close()
		return ""
	}
	private := "sudo make containerd     # from the repository: a private containerd, as the tests use"
	flag := "--containerd-socket"
	if dev {
		private += "\n  make run CONTAINERD_SOCKET=/tmp/v9-containerd/containerd.sock"
	}
	_, lookErr := exec.LookPath("containerd")
	switch {
	case errors.Is(err, fs.ErrNotExist) && lookErr != nil:
		return fmt.Sprintf(`containerd is not installed: container components will not run here (wasm components do).
To run containers, install it and start it:
  sudo apt-get install containerd runc   # Debian, Ubuntu
  sudo systemctl start containerd        # with systemd; it listens on %s
or, without systemd:
  %s
or give the socket of a running containerd with %s.`, defaultContainerdSocket, private, flag)
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf(`containerd is installed but not running at %s: container components will not run here (wasm components do).
Start it:
  sudo systemctl start containerd        # with systemd
or, without systemd:
  %s
or give the socket of a running containerd with %s.`, socket, private, flag)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf(`cannot connect to containerd at %s: permission denied: container components will not run here (wasm components do).
containerd's socket belongs to root: run v9 as root, or give the socket of a containerd you may reach with %s
(sudo make containerd starts a private one).`, socket, flag)
	}
	return fmt.Sprintf("containerd at %s does not answer (%v): container components will not run here (wasm components do).", socket, err)
}
