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

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/ghub"
	"github.com/velocity9/v9/internal/githubtest"
	"github.com/velocity9/v9/node"
	"github.com/velocity9/v9/webui"
)

// TestNoRaceConsoleBrowser drives the web console in a real Chromium (Debian's chromium,
// driven by playwright-core from webui/node_modules; never a downloaded browser) against a
// three-node cluster and the fake GitHub (internal/githubtest), the scenario: sign in
// with GitHub (the OAuth web flow), Start a repository from the user's list (the webhook is
// created, the build log streams live, the page ends on the component answering through a
// proxy), the hits graph counts requests, the logs stream a request's line, a pushed commit
// (the fake GitHub's webhook) shows in the history, Rollback, pause (the proxy answers 503)
// and resume (200), a status change committed through the API shows within a second, an
// upload deploy is listed the same way, 1,000 components stay responsive, the nodes page
// shows a killed node down and back, tokens, audit, a viewer cannot pause, secrets are
// set and deleted write-only. Screenshots of each page go to $V9_TEST_ARTIFACTS (default
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
	gh := githubtest.New(t)
	const repo = "octocat/hello-v9"
	gh.CreateRepo(repo, "main")
	gh.CreateRepo("octocat/dotfiles", "main")
	gh.Commit("octocat/dotfiles", "main", "init", map[string]string{"README.md": "no v9.toml here"})
	files := map[string]string{}
	for _, name := range []string{"v9.toml", "hello.wasm"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	gh.Commit(repo, "main", "first commit", files)
	gh.SignInAs("octocat")
	clientID, clientSecret := gh.OAuthApp()
	c := node.NewTestClusterConfig(t, 3, func(cfg *node.Config) {
		cfg.GitHub = ghub.Config{APIURL: gh.APIURL(), Token: gh.Token}
		cfg.SignIn = auth.GitHubConfig{ClientID: clientID, ClientSecret: clientSecret, WebURL: gh.WebURL(), APIURL: gh.APIURL(),
			AllowedUsers: []string{"octocat"}, SessionTTL: time.Hour}
	})
	f := c.Follower(t)
	// An upload deploy, listed the same way as the GitHub one the browser starts.
	upload := filepath.Join(t.TempDir(), "upload")
	if err := os.MkdirAll(upload, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if name == "v9.toml" {
			body = strings.Replace(body, `name = "hello"`, `name = "uploaded"`, 1)
		}
		if err := os.WriteFile(filepath.Join(upload, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustCLI(t, "--addr", f.APIAddr(), "deploy", upload, "-m", "upload deploy", "--author", "tester")

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

	// A ceiling for a loaded machine; the script takes about a minute on a quiet one.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	script := exec.CommandContext(ctx, "node", filepath.Join("..", "..", "webui", "e2e", "console.mjs"))
	script.Env = append(os.Environ(),
		"V9_CONSOLE=http://"+f.APIAddr(),
		"V9_PROXY=http://"+f.ProxyAddr(),
		"V9_COMPONENT=hello",
		"V9_REPO="+repo,
		"V9_UPLOADED=uploaded",
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
			case req.op == "push":
				// A new commit on the linked branch; the fake GitHub delivers the webhook.
				sha, ds := gh.Push(repo, "main", "second commit", files)
				if len(ds) == 0 {
					req.reply <- "no webhook delivered"
					break
				}
				req.reply <- sha
			default:
				req.reply <- "unknown request " + req.op
			}
		}
	}
	t.Logf("console.mjs output:\n%s%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("the browser test failed: %v (screenshots in %s)", err, out)
	}
	for _, shot := range []string{"signin.png", "start.png", "start-building.png", "start-done.png", "components.png", "component.png",
		"component-375-dark.png", "nodes.png", "nodes-down.png", "tokens.png", "audit.png", "component-viewer.png", "not-found.png", "components-1000.png"} {
		if _, err := os.Stat(filepath.Join(out, shot)); err != nil {
			t.Errorf("screenshot %s: %v", shot, err)
		}
	}
	// The budgets, and the indented breakdown under the first page's.
	breakdown := false
	for _, line := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(line, "measure ") || breakdown && strings.HasPrefix(line, "  ") {
			t.Log(line)
			breakdown = strings.HasPrefix(line, "measure first_page") || breakdown && strings.HasPrefix(line, "  ")
		} else {
			breakdown = false
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
