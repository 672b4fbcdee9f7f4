package ocitest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BuildGo builds the Go main package in pkgDir as a static linux binary (CGO_ENABLED=0) into
// t.TempDir() and returns its path.
func BuildGo(t testing.TB, pkgDir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkgDir))
	if err := GoBuild(out, pkgDir); err != nil {
		t.Fatal(err)
	}
	return out
}

// GoBuild is BuildGo for callers without a testing.TB: it builds pkgDir into out.
func GoBuild(out, pkgDir string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkgDir, err, strings.TrimSpace(string(b)))
	}
	return nil
}
