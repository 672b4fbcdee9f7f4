// Command mkimage builds a Go main package as a static linux binary and saves it as an OCI
// image archive whose entrypoint is the binary, without Docker or a registry:
//
//	go run ./runtime/container/ocitest/mkimage [-ref v9.local/hello-ctr:latest] [-o DIR/image.tar] DIR
//
// makes examples/hello-container deployable: `v9 deploy examples/hello-container` after
// `go run ./runtime/container/ocitest/mkimage examples/hello-container`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/velocity9/v9/runtime/container/ocitest"
)

func main() {
	ref := flag.String("ref", "v9.local/hello-ctr:latest", "image name, in the index's org.opencontainers.image.ref.name")
	out := flag.String("o", "", "archive to write (default DIR/image.tar)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mkimage [-ref NAME] [-o FILE] DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	dir := flag.Arg(0)
	if *out == "" {
		*out = filepath.Join(dir, "image.tar")
	}
	tmp, err := os.MkdirTemp("", "mkimage")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(tmp)
	// The binary is named hello inside the image whatever the package is called.
	bin := filepath.Join(tmp, "hello")
	if err := ocitest.GoBuild(bin, dir); err != nil {
		fail(err)
	}
	if err := ocitest.WriteArchiveFile(*out, bin, *ref); err != nil {
		fail(err)
	}
	fmt.Printf("wrote %s (%s)\n", *out, *ref)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}
