package node

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/velocity9/v9/runtime/container"
	"github.com/velocity9/v9/runtime/container/ocitest"
)

// testContainerd is the private containerd this package's tests run containers with;
// noContainerd says why there is none (tests that need it skip, except under CI).
var testContainerd, noContainerd string

func TestMain(m *testing.M) {
	if os.Getenv("V9_TEST_REAPER") == "1" {
		// This binary re-executed as a node's reaper (testReaper).
		if err := container.Reap(os.Stdin, os.Getenv("V9_REAPER_SOCKET"), os.Getenv("V9_REAPER_NAMESPACE"), os.Getenv("V9_REAPER_NODE")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(envLoadGen) == "1" {
		os.Exit(loadGenMain()) // this binary re-executed as a load generator (loadgen_test.go)
	}
	var stop func()
	testContainerd, noContainerd, stop = ocitest.ForTestMain("node")
	if testContainerd != "" {
		// A bridge of the same name can outlive an earlier process of the same pid, and
		// so can containers it left (a shim whose delete failed at shutdown): their
		// addresses stay on the bridge while this run's address leases (testNetState)
		// start empty, so a new container could get an address a stale one still answers
		// ARP for. A fresh bridge cuts the leftovers off; CNI creates it again.
		_ = exec.Command("ip", "link", "del", testNetwork.Bridge).Run()
	}
	code := m.Run()
	stop()
	if testContainerd != "" {
		_ = exec.Command("ip", "link", "del", testNetwork.Bridge).Run()
		// The bridge's firewall outlives its agents by design; a test's bridge is never
		// used again, and every run left a dozen rules that every packet is checked against.
		if err := container.RemoveFirewall(testNetwork.Bridge); err != nil {
			fmt.Fprintln(os.Stderr, "node tests: remove the test bridge's firewall:", err)
		}
	}
	ocitest.RemoveNetState(testNetState)
	if ctrBin != "" {
		os.Remove(ctrBin) // built once for all container tests
	}
	os.Exit(code)
}

func needContainerd(t testing.TB) {
	t.Helper()
	if testContainerd == "" {
		t.Skip(noContainerd)
	}
}

// testReaper is Config.ReaperCommand for tests: this test binary, re-executed.
func testReaper(socket, namespace, nodeID string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "V9_TEST_REAPER=1", "V9_REAPER_SOCKET="+socket,
		"V9_REAPER_NAMESPACE="+namespace, "V9_REAPER_NODE="+nodeID)
	return cmd
}

// containerOptions runs test nodes with the test containerd and a reaper each.
func containerOptions() TestOptions {
	return TestOptions{ContainerdSocket: testContainerd, Configure: func(c *Config) {
		c.ReaperCommand = testReaper
		c.ContainerNetwork = testNetwork
	}}
}

// testNetState holds the network namespaces and address leases of the tests' containers,
// shared by every node of a test cluster as the nodes of one machine share them.
var testNetState = filepath.Join(os.TempDir(), fmt.Sprintf("v9-node-net-%d", os.Getpid()))

// testNetwork is the tests' container network: a bridge and subnet of this process's own
// (10.220–235.x.0/24, by pid; the container executor's tests use 10.240–255), never v9br0.
// Test binaries of other checkouts may run on the machine at once: when they shared one
// bridge, one's start deleting it cut the other's containers off.
var testNetwork = container.Network{
	Bridge:   fmt.Sprintf("v9tn%d", os.Getpid()%1000000),
	Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(220 + os.Getpid()/256%16), byte(os.Getpid() % 256), 0}), 24),
	StateDir: testNetState,
}
