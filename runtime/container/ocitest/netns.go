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
	nodes, _ := filepath.Glob(filepath.Join(dir, "netns", "*"))
	for _, nodeDir := range nodes {
		entries, _ := os.ReadDir(nodeDir)
		for _, de := range entries {
			netns.LoadNetNS(filepath.Join(nodeDir, de.Name())).Remove()
		}
	}
	os.RemoveAll(dir)
}
