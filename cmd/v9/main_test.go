package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/velocity9/v9/node"
)

// TestMain gives the tests a private temporary directory, removed at the end: everything
// they and the test clusters create under os.TempDir lands there (node.NewTestCluster's
// shared wasm compilation cache included, which warmWasmCache fills and which would
// otherwise outlive the process).
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "v9-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	// The CLI's token file (v9 login, v9 dev) goes to the private directory, never the
	// user's; in-process runs against test clusters send the test cluster's admin token.
	os.Setenv("XDG_CONFIG_HOME", tmp)
	os.Setenv("V9_TOKEN", node.TestToken)
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}
