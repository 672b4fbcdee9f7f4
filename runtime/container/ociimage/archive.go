// Package ociimage makes an OCI image archive (the layout `docker save --format oci` writes
// and containerd imports) from one static binary, and builds such a binary from a Go main
// package, with no Docker, daemon or registry. `v9 image build` and the container tests
// use it. It only writes files; it never talks to containerd.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // go-digest hashes with the registered crypto.SHA256
	"encoding/json"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// epoch is the modification time of every file in an archive, so that the same binary gives
// the same digests (a re-import is then a no-op for containerd's content store).
var epoch = time.Unix(0, 0).UTC()

// WriteArchiveFile writes the archive of WriteArchive to the file path.
func WriteArchiveFile(path, binary, name, ref string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteArchive(f, binary, name, ref); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteArchive writes an OCI image archive to w: one layer holding binary as /NAME (and the
// directories /app and /tmp), entrypoint ["/NAME"], for linux on this machine's
// architecture, named ref by the index's org.opencontainers.image.ref.name annotation. The
// same binary gives the same bytes (every time is the epoch), so a re-import is a no-op.
func WriteArchive(w io.Writer, binary, name, ref string) error {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("read binary: %w", err)
	}

	// The layer: the binary as /NAME, and the directories a container expects.
	var layer bytes.Buffer
	lt := tar.NewWriter(&layer)
	for _, d := range []struct {
		name string
		mode int64
	}{{"app/", 0o755}, {"tmp/", 0o1777}} {
		if err := lt.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	if err := lt.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(bin)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := lt.Write(bin); err != nil {
		return err
	}
	if err := lt.Close(); err != nil {
		return err
	}
	diffID := digest.FromBytes(layer.Bytes())
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(layer.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}

	config, err := json.Marshal(ocispec.Image{
		Created:  &epoch,
		Platform: ocispec.Platform{Architecture: goruntime.GOARCH, OS: "linux"},
		Config: ocispec.ImageConfig{
			Entrypoint: []string{"/" + name},
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	})
	if err != nil {
		return err
	}
	configDesc := descriptor(ocispec.MediaTypeImageConfig, config)
	layerDesc := descriptor(ocispec.MediaTypeImageLayerGzip, gz.Bytes())

	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manifestDesc := descriptor(ocispec.MediaTypeImageManifest, manifest)
	manifestDesc.Platform = &ocispec.Platform{Architecture: goruntime.GOARCH, OS: "linux"}
	if ref != "" {
		manifestDesc.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
	}

	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{manifestDesc},
	})
	if err != nil {
		return err
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	files := []struct {
		name string
		data []byte
	}{
		{ocispec.ImageLayoutFile, layout},
		{blobPath(configDesc), config},
		{blobPath(layerDesc), gz.Bytes()},
		{blobPath(manifestDesc), manifest},
		{"index.json", index},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func descriptor(mediaType string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

func blobPath(d ocispec.Descriptor) string {
	return "blobs/" + d.Digest.Algorithm().String() + "/" + d.Digest.Encoded()
}
