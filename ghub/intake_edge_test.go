package ghub

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/githubtest"
	"github.com/velocity9/v9/internal/loglimit"
	"github.com/velocity9/v9/internal/testkit"
	"github.com/velocity9/v9/internal/wasmtest"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// intakeFixture is a Service linked to octo/hello on the fake GitHub, with its webhook
// handler on a real HTTP server and its log captured.
type intakeFixture struct {
	gh   *githubtest.Server
	hook githubtest.Hook
	url  string
	logs *testkit.Buffer
}

func newIntakeFixture(t *testing.T) *intakeFixture {
	t.Helper()
	gh := githubtest.New(t)
	const repo = "octo/hello"
	gh.CreateRepo(repo, "main")
	gh.Commit(repo, "main", "first", map[string]string{"v9.toml": "name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"app.wasm\"\n", "app.wasm": string(wasmtest.Trap())})
	st := fsm.NewStore()
	logs := &testkit.Buffer{}
	s := newStoreService(t, gh, &storeCluster{st: st}, slog.New(slog.NewTextHandler(logs, nil)))
	if _, err := s.CreateLinked(context.Background(), &componentv1.CreateRequest{Name: "hello", Source: &statev1.Source{GithubRepo: repo, Branch: "main"}}); err != nil {
		t.Fatal(err)
	}
	hooks := gh.Hooks(repo)
	if len(hooks) != 1 || hooks[0].Secret == "" {
		t.Fatalf("hooks %+v", hooks)
	}
	return &intakeFixture{gh: gh, hook: hooks[0], url: hooks[0].URL, logs: logs} // the handler, where GitHub delivers
}

// send delivers body as event, signed with the hook's secret as GitHub does, through the
// HTTP webhook handler.
func (f *intakeFixture) send(event string, body []byte) *githubtest.Delivery {
	d := f.gh.NewDelivery(&f.hook, event, body)
	f.gh.Send(d, f.url)
	return d
}

// TestWebhookIgnoredEvents: correctly signed real payloads of events v9 does not act on are
// accepted as ignored once they are JSON, whatever go-github makes of them; a signed ping
// still pongs; a signed push or ping whose body is not a JSON object is malformed.
func TestWebhookIgnoredEvents(t *testing.T) {
	f := newIntakeFixture(t)
	for event, file := range map[string]string{
		"check_run":  "check_run.created.json",
		"discussion": "discussion.created.json",
		"package":    "package.published.json", // its metadata: [] does not decode into go-github's PackageVersion
	} {
		body, err := os.ReadFile("testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if d := f.send(event, body); d.Status != http.StatusAccepted || !strings.Contains(d.Answer, `"ignored"`) {
			t.Errorf("signed %s: %d %s, want 202 ignored", event, d.Status, d.Answer)
		}
	}
	if d := f.send("ping", []byte(`{"zen":"Keep it logically awesome.","hook_id":1,"repository":{"full_name":"octo/hello"}}`)); d.Status != http.StatusOK || !strings.Contains(d.Answer, "pong") {
		t.Errorf("signed ping: %d %s", d.Status, d.Answer)
	}
	for name, c := range map[string]struct{ event, body string }{
		"push null":       {"push", `null`},
		"push array":      {"push", `[]`},
		"push string":     {"push", `"refs/heads/main"`},
		"ping null":       {"ping", ` null `},
		"check_run cut":   {"check_run", `{"action":"created","check_run":`},
		"discussion text": {"discussion", `created`},
	} {
		if d := f.send(c.event, []byte(c.body)); d.Status != http.StatusBadRequest || !strings.Contains(d.Answer, "malformed") {
			t.Errorf("%s: %d %s, want 400 malformed", name, d.Status, d.Answer)
		}
	}
	// A signed push to the linked branch is still recorded.
	sha, deliveries := f.gh.Push("octo/hello", "main", "second", map[string]string{"README": "x"})
	if len(deliveries) != 1 || deliveries[0].Status != http.StatusAccepted || !strings.Contains(deliveries[0].Answer, "deployed") {
		t.Fatalf("push %s: %+v", sha[:7], deliveries)
	}
}

// TestWebhookRefusalsLogRateLimited: an unauthenticated sender cannot fill the log: 1,000
// deliveries with a bad signature and 1,000 for no linked repository each produce a bounded
// number of log lines, while every one of them is still refused.
func TestWebhookRefusalsLogRateLimited(t *testing.T) {
	f := newIntakeFixture(t)
	const n = 1000
	body := []byte(`{"ref":"refs/heads/main","after":"` + strings.Repeat("ab", 20) + `","repository":{"full_name":"octo/hello"},"head_commit":{"message":"m","author":{"name":"a"}},"pusher":{"name":"p"}}`)
	other := bytes.Replace(body, []byte("octo/hello"), []byte("someone/else"), -1)
	start := time.Now()
	for i := 0; i < n; i++ {
		d := f.gh.NewDelivery(&f.hook, "push", body)
		d.Header.Set("X-Hub-Signature-256", githubtest.Sign256([]byte("guessed"), body))
		f.gh.Send(d, f.url)
		if d.Status != http.StatusUnauthorized {
			t.Fatalf("bad signature %d: %d %s", i, d.Status, d.Answer)
		}
		d = f.gh.NewDelivery(&githubtest.Hook{ID: 999, Secret: "x"}, "push", other)
		f.gh.Send(d, f.url)
		if d.Status != http.StatusNotFound {
			t.Fatalf("no link %d: %d %s", i, d.Status, d.Answer)
		}
	}
	// One line per kind per loglimit.DefaultEvery, plus the first.
	bound := 1 + int(time.Since(start)/loglimit.DefaultEvery)
	for _, kind := range []string{"bad signature", "no linked repository"} {
		if got := len(f.logs.Lines(kind)); got == 0 || got > bound {
			t.Errorf("%d deliveries (%s) logged %d lines, want 1..%d", n, kind, got, bound)
		}
	}
}
