package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
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
	sock, stop, err := ocitest.Containerd()
	switch {
	case err == nil:
		testContainerd = sock
	case errors.Is(err, ocitest.ErrNoContainerd) && os.Getenv("CI") == "":
		noContainerd = err.Error()
	default:
		// Under CI containerd must be there: a skipped test would hide a broken setup.
		fmt.Fprintln(os.Stderr, "node tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
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
	return TestOptions{ContainerdSocket: testContainerd, Configure: func(c *Config) { c.ReaperCommand = testReaper }}
}
