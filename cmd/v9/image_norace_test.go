//go:build !race

package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestNoRaceImageBuild runs `v9 image build` on a copy of examples/hello-container outside
// the repository: it builds the binary with the example's own go.mod and writes the archive
// its v9.toml names, holding an index whose image is the v9.toml's and a layer with the
// binary. (The container tests run such archives on containerd.)
func TestNoRaceImageBuild(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hello-container")
	if err := os.CopyFS(dir, os.DirFS("../../examples/hello-container")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "image.tar"))
	r := mustCLI(t, "image", "build", dir)
	if !strings.Contains(r.stdout, "v9.local/hello-ctr:latest") {
		t.Fatalf("image build printed %s", r)
	}
	f, err := os.Open(filepath.Join(dir, "image.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var index ocispec.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations[ocispec.AnnotationRefName] != "v9.local/hello-ctr:latest" {
		t.Fatalf("index: %+v", index)
	}
	if _, ok := files[ocispec.ImageLayoutFile]; !ok {
		t.Fatalf("no %s in the archive", ocispec.ImageLayoutFile)
	}

	// Without a manifest: named after the directory, written to DIR/image.tar.
	os.Remove(filepath.Join(dir, "v9.toml"))
	r = mustCLI(t, "image", "build", dir, "-o", filepath.Join(dir, "other.tar"))
	if !strings.Contains(r.stdout, "v9.local/hello-container:latest") || !strings.Contains(r.stdout, "/hello-container") {
		t.Fatalf("image build without v9.toml printed %s", r)
	}
}
