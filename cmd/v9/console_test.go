//go:build !race

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/node"
	"github.com/velocity9/v9/webui"
)

// TestNoRaceConsoleBrowser drives the web console in a real Chromium (Debian's chromium,
// driven by playwright-core from webui/node_modules; never a downloaded browser) against a
// three-node cluster with examples/hello-wasm deployed twice: the components page lists it,
// its page rolls back to the first deployment, pauses it (the proxy answers 503) and resumes it (200), the live logs show a request's
// line, a status change committed through the API shows within a second, and the nodes page
// shows the three nodes, one of them down while the test has killed it and ready again after
// its restart. Screenshots of each page go to $V9_TEST_ARTIFACTS (default
// webui/e2e/out), printed at the end with the measured budgets.
//
// It needs the console built into the test binary (make console), chromium and webui's npm
// packages; without them it skips, or fails under CI=true, where .ci/run installs them.
func TestNoRaceConsoleBrowser(t *testing.T) {
	missing := consoleTestNeeds()
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("console browser test cannot run: %s", missing)
		}
		t.Skipf("console browser test skipped: %s", missing)
	}
	out := os.Getenv("V9_TEST_ARTIFACTS")
	if out == "" {
		out = filepath.Join("..", "..", "webui", "e2e", "out")
	}
	out, _ = filepath.Abs(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}

	dir := helloCopy(t)
	c := node.NewTestCluster(t, 3)
	f := c.Follower(t)
	mustCLI(t, "--addr", f.APIAddr(), "deploy", dir, "-m", "first deploy", "--author", "tester")
	mustCLI(t, "--addr", f.APIAddr(), "deploy", dir, "-m", "second deploy", "--author", "tester")

	// The script asks, through this control server, for a node to be killed and restarted
	// while the nodes page is open; the test goroutine does it.
	ctl := make(chan controlReq)
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := controlReq{op: strings.TrimPrefix(r.URL.Path, "/"), reply: make(chan string, 1)}
		select {
		case ctl <- req:
			_, _ = io.WriteString(w, <-req.reply)
		case <-r.Context().Done():
		}
	}))
	defer control.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	script := exec.CommandContext(ctx, "node", filepath.Join("..", "..", "webui", "e2e", "console.mjs"))
	script.Env = append(os.Environ(),
		"V9_CONSOLE=http://"+f.APIAddr(),
		"V9_PROXY=http://"+f.ProxyAddr(),
		"V9_COMPONENT=hello",
		"V9_NODES=3",
		"V9_OUT="+out,
		"V9_CONTROL="+control.URL,
	)
	var stdout, stderr bytes.Buffer
	script.Stdout, script.Stderr = &stdout, &stderr
	if err := script.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- script.Wait() }()
	killed := -1
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case req := <-ctl:
			switch {
			case req.op == "kill" && killed < 0:
				// Neither the node serving the console nor the leader.
				l := c.Leader(t)
				for i, n := range c.Nodes {
					if n != f && n != l {
						killed = i
					}
				}
				id := c.Nodes[killed].ID()
				c.Kill(killed)
				req.reply <- id
			case req.op == "restart" && killed >= 0:
				c.Restart(killed)
				req.reply <- c.Nodes[killed].ID()
			default:
				req.reply <- "unknown request " + req.op
			}
		}
	}
	t.Logf("console.mjs output:\n%s%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("the browser test failed: %v (screenshots in %s)", err, out)
	}
	for _, shot := range []string{"components.png", "component.png", "component-375-dark.png", "nodes.png", "nodes-down.png", "signin.png", "not-found.png"} {
		if _, err := os.Stat(filepath.Join(out, shot)); err != nil {
			t.Errorf("screenshot %s: %v", shot, err)
		}
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(line, "measure ") {
			t.Log(line)
		}
	}
	t.Logf("screenshots in %s", out)
}

type controlReq struct {
	op    string // "kill" or "restart"
	reply chan string
}

// consoleTestNeeds says what the browser test lacks, or "".
func consoleTestNeeds() string {
	var missing []string
	if !webui.Built() {
		missing = append(missing, "the console is not built into the test binary (run make console first)")
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		missing = append(missing, "no /usr/bin/chromium (apt-get install chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "no node on PATH")
	}
	if _, err := os.Stat(filepath.Join("..", "..", "webui", "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "no webui/node_modules/playwright-core (npm ci in webui/)")
	}
	return strings.Join(missing, "; ")
}
