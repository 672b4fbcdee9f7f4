// Package ocitest gives container tests what they need without Docker or a registry: a
// static Go binary and an OCI image archive holding it (both made by package ociimage), and a
// private containerd to run them. Tests of runtime/container and the node's integration tests
// share it.
package ocitest

import (
	"path/filepath"
	"testing"

	"github.com/velocity9/v9/runtime/container/ociimage"
)

// BuildGo builds the Go main package in pkgDir as a static linux binary (CGO_ENABLED=0) into
// t.TempDir() and returns its path.
func BuildGo(t testing.TB, pkgDir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkgDir))
	if err := ociimage.GoBuild(out, pkgDir); err != nil {
		t.Fatal(err)
	}
	return out
}

// BuildArchive writes an OCI image archive (ociimage.WriteArchive) to a file in t.TempDir()
// and returns its path. The image has one layer holding binary as /hello, entrypoint
// ["/hello"], and is named ref.
func BuildArchive(t testing.TB, binary, ref string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := ociimage.WriteArchiveFile(path, binary, "hello", ref); err != nil {
		t.Fatal(err)
	}
	return path
}
