package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/examples"
	"github.com/velocity9/v9/node"
	"github.com/velocity9/v9/rpc/client"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
)

// devExampleName is the component `v9 dev` deploys on a new cluster (examples/hello-wasm).
const devExampleName = "hello"

// devExampleTimeout bounds the example's compile and rollout: the first compile builds Go's
// runtime for wasm, which takes a minute on a slow machine.
const devExampleTimeout = 5 * time.Minute

// devExample deploys the example on a new cluster (isNew), or finds it on a restarted one,
// and returns its URL on n's proxy: "" when it is not there. Failures are reported on
// progress; the cluster runs on without the example.
func devExample(ctx context.Context, cmd *cobra.Command, a *app, progress io.Writer, n *node.Node, secret string, isNew bool) string {
	url := fmt.Sprintf("http://%s/%s/", n.ProxyAddr(), devExampleName)
	if !isNew {
		c := client.New(n.APIAddr(), client.WithToken(secret))
		if _, err := c.Components.Get(ctx, connect.NewRequest(&componentv1.GetRequest{Name: devExampleName})); err != nil {
			return ""
		}
		return url
	}
	if err := deployDevExample(ctx, cmd, a, progress, n.APIAddr(), secret); err != nil {
		if ctx.Err() == nil {
			msg, hint := describeError(err, n.APIAddr())
			fmt.Fprintf(progress, "v9 dev: the example was not deployed: %s\n", msg)
			if hint != "" {
				fmt.Fprintf(progress, "hint: %s\n", hint)
			}
		}
		return ""
	}
	return url
}

// deployDevExample builds the embedded examples/hello-wasm with the go command and deploys it
// through the API at addr, as `v9 deploy` would. Progress goes to progress; the "serving:"
// line to cmd's stdout.
func deployDevExample(ctx context.Context, cmd *cobra.Command, a *app, progress io.Writer, addr, secret string) error {
	ctx, cancel := context.WithTimeoutCause(ctx, devExampleTimeout, errDeployTimeout)
	defer cancel()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return hintError{errors.New("no go command on PATH to build the example"),
			"install Go (https://go.dev/dl/), or deploy a component of your own with `v9 deploy DIR`"}
	}
	dir, err := os.MkdirTemp("", "v9-dev-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src, err := fs.Sub(examples.HelloWasm, "hello-wasm")
	if err != nil {
		return err
	}
	if err := os.CopyFS(dir, src); err != nil {
		return fmt.Errorf("write the example: %w", err)
	}
	// The example builds outside any module (its README says `go build main.go`); the build
	// here wants one.
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.24\n"), 0o644); err != nil {
		return err
	}

	fmt.Fprintf(progress, "v9 dev: new cluster: deploying the example %q (examples/hello-wasm)\n", devExampleName)
	fmt.Fprintf(progress, "v9 dev: compiling it with GOOS=wasip1 GOARCH=wasm %s build (the first time also compiles Go's runtime for wasm: up to a minute)\n", goCmd)
	start := time.Now()
	var log bytes.Buffer
	m := &deploy.Manifest{Runtime: deploy.RuntimeWasm, Wasm: deploy.ManifestWasm{Build: "go"}}
	built, err := deploy.Build(ctx, dir, m, deploy.BuildOptions{Go: goCmd, Env: os.Environ(), Timeout: devExampleTimeout}, &log)
	if err != nil {
		return fmt.Errorf("build the example: %w\n%s", err, strings.TrimSpace(log.String()))
	}
	if err := os.Rename(filepath.Join(dir, filepath.FromSlash(built)), filepath.Join(dir, "hello.wasm")); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(dir, filepath.Dir(filepath.FromSlash(built)))); err != nil {
		return err
	}
	fmt.Fprintf(progress, "v9 dev: compiled in %s; uploading and rolling out\n", time.Since(start).Round(100*time.Millisecond))

	d := &deployer{a: a, c: client.New(addr, client.WithToken(secret)), stderr: progress, timeout: devExampleTimeout}
	up, err := d.upload(ctx, dir, &deployv1.UploadMeta{CommitMessage: "the example v9 dev deploys on a new cluster", Author: "v9 dev"})
	if err != nil {
		return d.deadline(ctx, err, "the upload did not finish")
	}
	return d.watch(ctx, cmd, up.GetComponent().GetName(), up.GetDeployment().GetId())
}
