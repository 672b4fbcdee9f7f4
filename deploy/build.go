package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/velocity9/v9/spec"
)

// BuiltModule is where a `build = "go"` module is written inside the build directory, and
// so inside the artifact.
const BuiltModule = ".v9/app.wasm"

// DefaultBuildTimeout bounds one compile.
const DefaultBuildTimeout = 5 * time.Minute

// ErrBuild: the build command failed; the error carries its output's tail.
var ErrBuild = errors.New("build failed")

// BuildOptions configure the compile of `build = "go"` components.
type BuildOptions struct {
	Go          string        // the go command (default "go" on PATH)
	CacheDir    string        // GOCACHE shared by builds (default: the go command's own)
	ModCacheDir string        // GOMODCACHE shared by builds (default: the go command's own)
	Timeout     time.Duration // default DefaultBuildTimeout
	// Env is the environment the go command starts from (PATH, HOME, GOPROXY...); the
	// target and caches above are set on top of it.
	Env []string
	// Limits bound the extracted repository (zero fields: 10,000 entries, 512 MiB).
	Limits Limits
}

// Build produces what the manifest in dir asks for and returns the module path to run,
// relative to dir ("" for containers, which run the repository's files as they are).
// Output of the compiler goes to log.
func Build(ctx context.Context, dir string, m *Manifest, o BuildOptions, log io.Writer) (string, error) {
	switch {
	case m.Runtime != RuntimeWasm:
		fmt.Fprintf(log, "runtime %s: the repository's files are the artifact; nothing to compile\n", m.Runtime)
		return "", nil
	case m.Wasm.Build == "":
		fmt.Fprintf(log, "prebuilt module %s\n", m.Wasm.Module)
		return m.Wasm.Module, nil
	case m.Wasm.Build != "go":
		return "", fmt.Errorf("%w: wasm.build %q is not supported", ErrBuild, m.Wasm.Build)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultBuildTimeout
	}
	goCmd := o.Go
	if goCmd == "" {
		goCmd = "go"
	}
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(BuiltModule)), 0o755); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBuild, err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"build", "-trimpath"}
	if m.Wasm.ABI == spec.WasmABIHTTP {
		args = append(args, "-buildmode=c-shared") // a WASI reactor: initialized once, then called per request
	}
	cmd := exec.CommandContext(cctx, goCmd, append(args, "-o", BuiltModule, ".")...)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, o.Env...), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod -buildvcs=false")
	if o.CacheDir != "" {
		cmd.Env = append(cmd.Env, "GOCACHE="+o.CacheDir)
	}
	if o.ModCacheDir != "" {
		cmd.Env = append(cmd.Env, "GOMODCACHE="+o.ModCacheDir)
	}
	var out bytes.Buffer
	w := io.MultiWriter(log, &capped{b: &out, n: 64 << 10})
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second
	fmt.Fprintf(log, "$ GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go %s -o %s .\n", strings.Join(args, " "), BuiltModule)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		if cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return "", fmt.Errorf("%w: go build did not finish within %s", ErrBuild, timeout)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: go build: %v: %s", ErrBuild, err, firstLines(out.String(), 3))
	}
	fmt.Fprintf(log, "compiled in %s\n", time.Since(start).Round(time.Millisecond))
	return BuiltModule, nil
}

// firstLines returns the first n lines of s that are not "# package" headers, joined by "; ".
func firstLines(s string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if out = append(out, l); len(out) == n {
			break
		}
	}
	return strings.Join(out, "; ")
}

// capped keeps the first n bytes written to it.
type capped struct {
	b *bytes.Buffer
	n int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.n - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
