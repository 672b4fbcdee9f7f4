package container

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/distribution/reference"

	"github.com/velocity9/v9/runtime"
)

// readyImage is an image ready to run: unpacked for the executor's snapshotter, with its
// config read. The executor remembers them by name, so that a start of an image it has
// already prepared costs no round trip to containerd.
type readyImage struct {
	img      containerd.Image
	artifact string // for an image imported from an archive: the artifact's digest
	runnable bool   // the image config has an entrypoint or a command
	cached   bool   // came from the executor's memory, not from containerd just now
}

// image returns the spec's image, ready to run: imported from the archive in the artifact
// when the spec names one, else found locally or pulled.
func (e *Executor) image(ctx context.Context, spec runtime.Spec) (readyImage, error) {
	if spec.Container.ImageArchive != "" {
		return e.importImage(ctx, spec)
	}
	if spec.Container.Image == "" {
		return readyImage{}, fmt.Errorf("%w: no image and no image archive", runtime.ErrBadArtifact)
	}
	name, err := normalize(spec.Container.Image)
	if err != nil {
		return readyImage{}, err
	}
	if ri, ok := e.cachedImage(name); ok {
		return ri, nil
	}
	img, err := e.client.GetImage(ctx, name)
	switch {
	case err == nil:
		if err := e.unpack(ctx, img); err != nil {
			return readyImage{}, err
		}
	case errdefs.IsNotFound(err):
		e.log.Info("pulling image", "image", name)
		img, err = e.client.Pull(ctx, name, containerd.WithPullUnpack, containerd.WithPullSnapshotter(e.snapshotter))
		if err != nil {
			return readyImage{}, fmt.Errorf("image %s not found locally and cannot be pulled: %w", spec.Container.Image, err)
		}
	default:
		return readyImage{}, fmt.Errorf("look up image %s: %w", name, err)
	}
	return e.remember(ctx, name, img, "")
}

// normalize turns a reference such as "python:3.12" into containerd's full name
// ("docker.io/library/python:3.12").
func normalize(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("%w: image reference %q: %v", runtime.ErrBadArtifact, ref, err)
	}
	return named.String(), nil
}

// importImage imports the OCI archive spec.Container.ImageArchive from spec.Dir and names
// its index spec.Container.Image (or v9.local/<component>:<digest> when the manifest names
// no image). Importing the same archive again is harmless (the content is addressed by
// digest and the name is updated in place), and skipped when the image is already labelled
// with the artifact's digest.
func (e *Executor) importImage(ctx context.Context, spec runtime.Spec) (readyImage, error) {
	archive := spec.Container.ImageArchive
	var name string
	if spec.Container.Image != "" {
		n, err := normalize(spec.Container.Image)
		if err != nil {
			return readyImage{}, err
		}
		name = n
	} else {
		tag := "latest"
		if _, hex, ok := strings.Cut(spec.Digest, ":"); ok && len(hex) >= 12 {
			tag = hex[:12]
		}
		name = "v9.local/" + strings.ToLower(cleanID(spec.Component, 63)) + ":" + tag
	}

	if spec.Dir == "" {
		return readyImage{}, fmt.Errorf("%w: image archive %s: the spec has no directory", runtime.ErrBadArtifact, archive)
	}
	// os.Root keeps the archive inside the directory, symbolic links included.
	root, err := os.OpenRoot(spec.Dir)
	if err != nil {
		return readyImage{}, fmt.Errorf("%w: image archive %s: %v", runtime.ErrBadArtifact, archive, err)
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(archive))
	if err != nil {
		return readyImage{}, fmt.Errorf("%w: image archive %s: %v", runtime.ErrBadArtifact, archive, err)
	}
	defer f.Close()

	if spec.Digest != "" {
		if ri, ok := e.cachedImage(name); ok && ri.artifact == spec.Digest {
			return ri, nil
		}
	}
	e.importMu.Lock()
	defer e.importMu.Unlock()
	is := e.client.ImageService()
	if spec.Digest != "" {
		if rec, err := is.Get(ctx, name); err == nil && rec.Labels[labelArtifact] == spec.Digest {
			img := containerd.NewImage(e.client, rec)
			if err := e.unpack(ctx, img); err != nil {
				return readyImage{}, err
			}
			return e.remember(ctx, name, img, spec.Digest)
		}
	}

	rec, err := e.importArchive(ctx, f, name)
	if err != nil {
		return readyImage{}, fmt.Errorf("%w: import image archive %s: %v", runtime.ErrBadArtifact, archive, err)
	}
	if spec.Digest != "" {
		if rec.Labels == nil {
			rec.Labels = map[string]string{}
		}
		rec.Labels[labelArtifact] = spec.Digest
		if rec, err = is.Update(ctx, rec, "labels."+labelArtifact); err != nil {
			return readyImage{}, fmt.Errorf("label image %s: %w", name, err)
		}
	}
	img := containerd.NewImage(e.client, rec)
	if err := e.unpack(ctx, img); err != nil {
		return readyImage{}, fmt.Errorf("%w: %v", runtime.ErrBadArtifact, err)
	}
	e.log.Info("imported image", "image", name, "archive", archive, "artifact", spec.Digest)
	return e.remember(ctx, name, img, spec.Digest)
}

// importArchive imports an OCI archive and names its index name.
func (e *Executor) importArchive(ctx context.Context, r io.Reader, name string) (images.Image, error) {
	imgs, err := e.client.Import(ctx, r,
		containerd.WithIndexName(name),
		// Only the name v9 chose: names inside the archive could overwrite unrelated images.
		containerd.WithImageRefTranslator(func(string) string { return "" }))
	if err != nil {
		return images.Image{}, err
	}
	for _, i := range imgs {
		if i.Name == name {
			return i, nil
		}
	}
	return images.Image{}, fmt.Errorf("no image named %s", name)
}

// unpack makes img's layers into snapshots for the executor's snapshotter, once.
func (e *Executor) unpack(ctx context.Context, img containerd.Image) error {
	ok, err := img.IsUnpacked(ctx, e.snapshotter)
	if err != nil {
		return fmt.Errorf("unpack image %s: %w", img.Name(), err)
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, e.snapshotter); err != nil {
		return fmt.Errorf("unpack image %s: %w", img.Name(), err)
	}
	return nil
}

// remember reads img's config and keeps the image ready under name.
func (e *Executor) remember(ctx context.Context, name string, img containerd.Image, artifact string) (readyImage, error) {
	ic, err := img.Spec(ctx)
	if err != nil {
		return readyImage{}, fmt.Errorf("%w: read image config of %s: %v", runtime.ErrBadArtifact, name, err)
	}
	ri := readyImage{
		img:      img,
		artifact: artifact,
		runnable: len(ic.Config.Entrypoint) > 0 || len(ic.Config.Cmd) > 0,
	}
	e.mu.Lock()
	e.images[name] = ri
	e.mu.Unlock()
	return ri, nil
}

func (e *Executor) cachedImage(name string) (readyImage, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ri, ok := e.images[name]
	ri.cached = true
	return ri, ok
}

// forgetImage drops a remembered image that turned out to be gone from containerd.
func (e *Executor) forgetImage(img containerd.Image) {
	e.mu.Lock()
	delete(e.images, img.Name())
	e.mu.Unlock()
}
