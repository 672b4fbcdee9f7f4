package ocitest

import (
	"os"
	"path/filepath"

	"github.com/containerd/containerd/pkg/netns"
)

// RemoveNetState removes a container network state directory (container.Network.StateDir)
// that tests made, unmounting first the network namespaces that containers a failed test
// left behind kept mounted in it.
func RemoveNetState(dir string) {
	nsDir := filepath.Join(dir, "netns")
	if entries, err := os.ReadDir(nsDir); err == nil {
		for _, de := range entries {
			netns.LoadNetNS(filepath.Join(nsDir, de.Name())).Remove()
		}
	}
	os.RemoveAll(dir)
}
