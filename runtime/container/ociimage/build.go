package ociimage

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// GoBuild builds the Go main package in pkgDir as a static linux binary (CGO_ENABLED=0,
// GOOS=linux, this machine's GOARCH) into out, with the go command on PATH.
func GoBuild(out, pkgDir string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkgDir, err, strings.TrimSpace(string(b)))
	}
	return nil
}
