package main

import (
	"fmt"
	"os"
	"testing"
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
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}
