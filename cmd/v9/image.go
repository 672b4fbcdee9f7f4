package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/runtime/container/ociimage"
)

func newImageCmd(a *app) *cobra.Command {
	cmd := group("image", "Make container images without Docker or a registry")
	cmd.AddCommand(newImageBuildCmd(a))
	return cmd
}

func newImageBuildCmd(a *app) *cobra.Command {
	var ref, out, binary, name string
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build a Go main package (or package a static binary) as an OCI image archive",
		Long: `Build the Go main package in DIR (default: the current directory) as a static linux
binary (CGO_ENABLED=0, this machine's architecture) and save it as an OCI image archive
whose entrypoint is the binary: no Docker, daemon or registry needed. With --binary, package
that static binary instead of building.

When DIR holds a v9.toml of a container component, the image is named by its
container.image and written to its container.archive, so that ` + "`v9 deploy DIR`" + ` imports it
on every node; otherwise the defaults are v9.local/<DIR's name>:latest and DIR/image.tar.
The image holds the binary as /<name>, empty /app (where v9 mounts the component's files)
and /tmp directories; the container gets $PORT and must listen on it.`,
		Example: `  v9 image build examples/hello-container && v9 deploy examples/hello-container
  v9 image build --binary ./server --ref v9.local/server:1 -o server.tar`,
		Args: optionalArg("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			// The manifest's names, if DIR has one (its archive may not exist yet, so it is
			// parsed, not loaded).
			b, err := os.ReadFile(filepath.Join(dir, deploy.ManifestFile))
			if err == nil {
				m, err := deploy.ParseManifest(b)
				if err != nil {
					return err
				}
				if m.Runtime == deploy.RuntimeContainer {
					if ref == "" {
						ref = m.Container.Image
					}
					if out == "" && m.Container.Archive != "" {
						out = filepath.Join(dir, filepath.FromSlash(m.Container.Archive))
					}
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			base := strings.ToLower(filepath.Base(abs))
			if ref == "" {
				ref = "v9.local/" + base + ":latest"
			}
			if out == "" {
				out = filepath.Join(dir, "image.tar")
			}
			if name == "" {
				name = base
				if binary != "" {
					name = filepath.Base(binary)
				}
			}
			if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
				return usageError{fmt.Errorf("--name %q: want a file name", name)}
			}
			stderr := cmd.ErrOrStderr()
			if binary == "" {
				if st, err := os.Stat(dir); err != nil || !st.IsDir() {
					if err == nil {
						err = fs.ErrInvalid
					}
					return fmt.Errorf("%s is not a directory: %w", dir, err)
				}
				tmp, err := os.MkdirTemp("", "v9-image-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				binary = filepath.Join(tmp, name)
				fmt.Fprintf(stderr, "building %s: CGO_ENABLED=0 GOOS=linux go build (a first build of a package takes a while)\n", dir)
				if err := ociimage.GoBuild(binary, dir); err != nil {
					return hintError{err, "v9 image build needs the go command and a Go main package in DIR; or give a static binary with --binary"}
				}
			}
			if err := ociimage.WriteArchiveFile(out, binary, name, ref); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			if a.json {
				return nil
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: image %s, entrypoint /%s\n", out, ref, name)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "image name (default: container.image of DIR/v9.toml, else v9.local/<DIR's name>:latest)")
	f.StringVarP(&out, "output", "o", "", "archive to write (default: container.archive of DIR/v9.toml, else DIR/image.tar)")
	f.StringVar(&binary, "binary", "", "package this static linux binary instead of building DIR")
	f.StringVar(&name, "name", "", "the binary's name in the image, /NAME (default: DIR's or the binary's name)")
	return cmd
}
