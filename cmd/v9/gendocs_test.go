package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCLIReferenceUpToDate regenerates the CLI reference and wants docs/cli to match it page
// for page: a changed flag or command without `make docs` fails here (and in `make
// check-docs`).
func TestCLIReferenceUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := writeCLIReference(dir); err != nil {
		t.Fatal(err)
	}
	committed, err := filepath.Glob("../../docs/cli/v9*.md")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := filepath.Glob(filepath.Join(dir, "v9*.md"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range committed {
		have[filepath.Base(f)] = true
	}
	for _, f := range fresh {
		name := filepath.Base(f)
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join("../../docs/cli", name))
		if err != nil || string(got) != string(want) {
			t.Errorf("docs/cli/%s is stale or missing: run `make docs` and commit docs/cli", name)
		}
		delete(have, name)
	}
	for name := range have {
		t.Errorf("docs/cli/%s documents a command that no longer exists: run `make docs`", name)
	}
}
