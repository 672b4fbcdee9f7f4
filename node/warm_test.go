// The warm-instance tests build a Go reactor (examples/hello-http); like the other data-plane
// tests they run without -race.

//go:build !race

package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// reactors holds the examples built as reactors, by directory, once per test binary.
var reactors sync.Map // example dir → func() ([]byte, error)

// reactorDirTB returns a fresh directory holding the example at dir built as a reactor, as
// name.wasm, and a manifest for a warm component name with the given extra lines before
// and inside its [wasm] table.
func reactorDirTB(t testing.TB, example, name, extra, wasmExtra string) string {
	t.Helper()
	build, _ := reactors.LoadOrStore(example, sync.OnceValues(func() ([]byte, error) {
		return buildExample(example, "-buildmode=c-shared")
	}))
	bin, err := build.(func() ([]byte, error))()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name+".wasm"), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := "name = \"" + name + "\"\nruntime = \"wasm\"\n" + extra +
		"\n[wasm]\nmodule = \"" + name + ".wasm\"\nabi = \"http\"\n" + wasmExtra
	if err := os.WriteFile(filepath.Join(dir, "v9.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// warmDirTB returns a fresh copy of examples/hello-http, built as a reactor, with the given
// extra manifest lines before its [wasm] table.
func warmDirTB(t testing.TB, extra, wasmExtra string) string {
	return reactorDirTB(t, "../examples/hello-http", "hello", extra, wasmExtra)
}

// The Go example written as a plain http.Handler, served warm through every proxy of a
// three-node cluster: state kept from request to request shows the instance is reused.
func TestDataPlaneWarmHandlerThroughEveryProxy(t *testing.T) {
	c := NewTestCluster(t, 3)
	resp := mustUpload(t, c.Follower(t), warmDirTB(t, "[env]\nGREETING = \"hi\"\n", ""))
	if resp.Deployment.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY {
		t.Fatalf("upload response: %v", resp)
	}
	if got := resp.Component.GetSpec().GetWasm().GetAbi(); got != "http" {
		t.Fatalf("spec abi %q, want http", got)
	}
	Eventually(t, 60*time.Second, func() error {
		for _, n := range c.Nodes {
			code, body, _, err := proxyGet(n, "", "/hello/x")
			if err != nil || code != 200 || body != "hello from wasm hi /hello/x\n" {
				return fmt.Errorf("%s proxy: %d %q %v", n.ID(), code, body, err)
			}
		}
		return nil
	})
	// Reused: one node's requests land on warm instances that count past 1.
	reused := false
	for i := 0; i < 20 && !reused; i++ {
		code, _, h, err := proxyGet(c.Nodes[0], "", "/hello/y")
		if err != nil || code != 200 {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
		reused = h.Get("X-Served") != "1"
	}
	if !reused {
		t.Fatal("every request was served by a new instance")
	}
	// A trap is a 500 and the next request is served.
	if code, _, _, _ := proxyGet(c.Nodes[1], "", "/hello/x?do=trap"); code != 500 {
		t.Fatalf("trap: %d, want 500", code)
	}
	if code, body, _, err := proxyGet(c.Nodes[1], "", "/hello/x"); code != 200 || !strings.Contains(body, "hello from wasm") {
		t.Fatalf("after the trap: %d %q %v", code, body, err)
	}
}

// A warm handler that streams (examples/stream-http), through every proxy of a three-node
// cluster, those that serve it and those that forward to another node: each line the client
// sends is answered before it sends the next, flushed events arrive, and trailers reach a Go
// client, over HTTP/1.1 and over HTTP/2 (h2c).
func TestDataPlaneWarmStreamThroughEveryProxy(t *testing.T) {
	dir := reactorDirTB(t, "../examples/stream-http", "stream", "", "")
	c := NewTestCluster(t, 3)
	mustUpload(t, c.Follower(t), dir)
	Eventually(t, 60*time.Second, func() error {
		for _, n := range c.Nodes {
			code, body, _, err := proxyGet(n, "", "/stream/ticks?n=3")
			if err != nil || code != 200 || body != "data: tick 0\n\ndata: tick 1\n\ndata: tick 2\n\n" {
				return fmt.Errorf("%s proxy: %d %q %v", n.ID(), code, body, err)
			}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	clients := map[string]*http.Client{
		"HTTP/1.1": {Transport: &http.Transport{}},
		"HTTP/2.0": {Transport: &http.Transport{Protocols: &h2c}},
	}
	for proto, client := range clients {
		for _, n := range c.Nodes {
			pr, pw := io.Pipe()
			context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) }) // a failed Do waits for its body
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+n.ProxyAddr()+"/stream/echo", pr)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", proto, n.ID(), err)
			}
			if resp.Proto != proto {
				t.Fatalf("%s %s: answered in %s", proto, n.ID(), resp.Proto)
			}
			lines := bufio.NewReader(resp.Body)
			for _, word := range []string{"one", "two", "three"} {
				if _, err := io.WriteString(pw, word+"\n"); err != nil {
					t.Fatal(err)
				}
				if line, err := lines.ReadString('\n'); err != nil || line != "got "+word+"\n" {
					t.Fatalf("%s %s (served by %s): answer to %q: %q %v", proto, n.ID(), resp.Header.Get("X-V9-Served-By"), word, line, err)
				}
			}
			pw.Close()
			resp.Body.Close()

			req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.ProxyAddr()+"/stream/trailer?flush=1", nil)
			if resp, err = client.Do(req); err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != "part 0\npart 1\npart 2\n" || resp.Trailer.Get("X-Late") != "late" || len(resp.Trailer.Get("X-Sum")) != 64 {
				t.Fatalf("%s %s: trailers: %q %v, trailers %v", proto, n.ID(), body, err, resp.Trailer)
			}
		}
	}
}
