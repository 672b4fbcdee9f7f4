package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerdAdvice: nothing to say when the socket answers or none is configured; a
// missing socket gets the ways to start containerd, the private one of `make containerd`
// among them.
func TestContainerdAdvice(t *testing.T) {
	if got := containerdAdvice("", true); got != "" {
		t.Fatalf("no socket configured: %q", got)
	}
	sock := filepath.Join(t.TempDir(), "c.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if got := containerdAdvice(sock, true); got != "" {
		t.Fatalf("a listening socket: %q", got)
	}
	ln.Close()
	got := containerdAdvice(filepath.Join(t.TempDir(), "missing.sock"), true)
	for _, want := range []string{"container components will not run", "make containerd", "CONTAINERD_SOCKET=", "--containerd-socket"} {
		if !strings.Contains(got, want) {
			t.Errorf("advice for a missing socket lacks %q:\n%s", want, got)
		}
	}
}
