package ghub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/internal/githubtest"
)

func TestVerifyWebhook(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"zen":"hi"}`)
	good := githubtest.Sign256(secret, body)
	if p, err := VerifyWebhook("application/json", body, good, secret); err != nil || !bytes.Equal(p, body) {
		t.Fatalf("good signature: %q %v", p, err)
	}
	if _, err := VerifyWebhook("application/json; charset=utf-8", body, good, secret); err != nil {
		t.Fatalf("content type with parameters: %v", err)
	}
	for name, c := range map[string]struct {
		sig    string
		secret []byte
		body   []byte
	}{
		"wrong secret":   {githubtest.Sign256([]byte("other"), body), secret, body},
		"missing":        {"", secret, body},
		"sha1 only":      {githubtest.Sign1(secret, body), secret, body},
		"tampered body":  {good, secret, []byte(`{"zen":"ho"}`)},
		"no secret":      {good, nil, body},
		"garbage header": {"sha256=zz", secret, body},
	} {
		if _, err := VerifyWebhook("application/json", c.body, c.sig, c.secret); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	if _, err := VerifyWebhook("text/plain", body, good, secret); !errors.Is(err, ErrBadPayload) {
		t.Errorf("text/plain: %v, want ErrBadPayload", err)
	}
}

func TestParseWebhook(t *testing.T) {
	gh := githubtest.New(t)
	gh.CreateRepo("octo/site", "main")
	sha := gh.Commit("octo/site", "main", "fix: the title\n\nlonger text", map[string]string{"a": "b"})
	ev, err := ParseWebhook("push", gh.PushPayload("octo/site", "main", sha))
	if err != nil {
		t.Fatal(err)
	}
	p := ev.Push
	if ev.Kind != "push" || p.Repo != "octo/site" || p.Branch != "main" || p.SHA != sha ||
		!strings.HasPrefix(p.Message, "fix: the title") || p.Author != "Mona Lisa" || p.Pusher != gh.Login {
		t.Fatalf("push: %+v %+v", ev, p)
	}
	if ev, err := ParseWebhook("ping", []byte(`{"zen":"z","hook_id":1}`)); err != nil || ev.Kind != "ping" {
		t.Fatalf("ping: %+v %v", ev, err)
	}
	for _, typ := range []string{"issues", "x-not-an-event"} {
		if ev, err := ParseWebhook(typ, []byte(`{"action":"opened"}`)); err != nil || ev.Kind != "ignored" {
			t.Fatalf("%s: %+v %v", typ, ev, err)
		}
	}
	for name, c := range map[string]struct{ typ, body string }{
		"not json":       {"push", `{"ref": `},
		"no event":       {"", `{}`},
		"no repository":  {"push", `{"ref":"refs/heads/main","after":"` + sha + `"}`},
		"bad after":      {"push", `{"ref":"refs/heads/main","after":"HEAD","repository":{"full_name":"a/b"}}`},
		"unknown broken": {"x-not-an-event", `{`},
	} {
		if _, err := ParseWebhook(c.typ, []byte(c.body)); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: %v, want ErrBadPayload", name, err)
		}
	}
	tag, _ := ParseWebhook("push", []byte(`{"ref":"refs/tags/v1","after":"`+sha+`","repository":{"full_name":"a/b"}}`))
	if tag.Push.Branch != "" {
		t.Errorf("a tag push names branch %q", tag.Push.Branch)
	}
}

func FuzzParseWebhook(f *testing.F) {
	f.Add("push", []byte(`{"ref":"refs/heads/main","after":"0123456789012345678901234567890123456789","repository":{"full_name":"a/b"},"head_commit":{"message":"m","author":{"name":"n"}}}`))
	f.Add("ping", []byte(`{"zen":"z"}`))
	f.Add("issues", []byte(`{}`))
	f.Add("push", []byte(`{"deleted":true,"repository":{"full_name":"a/b"}}`))
	f.Add("push", []byte(`null`))
	f.Add("package", []byte(`{"package":{"package_version":{"metadata":[]}}}`))
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		ev, err := ParseWebhook(typ, body)
		if typ != "" && typ != "ping" && typ != "push" && json.Valid(body) != (err == nil) {
			t.Fatalf("%s event, JSON %v: %+v %v", typ, json.Valid(body), ev, err)
		}
		if err == nil && (typ == "ping" || typ == "push") {
			if tb := bytes.TrimSpace(body); len(tb) == 0 || tb[0] != '{' {
				t.Fatalf("%s that is not a JSON object accepted: %q", typ, body)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error %v does not match ErrBadPayload", err)
			}
			return
		}
		if ev.Kind == "push" && (ev.Push == nil || ev.Push.Repo == "" || (!ev.Push.Deleted && !isSHA(ev.Push.SHA))) {
			t.Fatalf("push accepted without repository or commit: %+v", ev.Push)
		}
		PeekTarget(typ, body)
	})
}

func newFakeClient(t *testing.T, gh *githubtest.Server) Config {
	t.Helper()
	return Config{APIURL: gh.APIURL(), Token: gh.Token}
}

func TestFetchTarball(t *testing.T) {
	gh := githubtest.New(t)
	gh.CreateRepo("octo/site", "main")
	cfg := newFakeClient(t, gh)
	cli, err := NewClient(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sha := gh.Commit("octo/site", "main", "one", map[string]string{"v9.toml": "x", "src/main.go": "package main", "link": "symlink:src/main.go"})
	dest := filepath.Join(t.TempDir(), "src")
	if err := FetchTarball(ctx, cli, "octo/site", sha, dest, FetchOptions{Token: gh.Token}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "link")); err != nil || string(b) != "package main" {
		t.Fatalf("extracted tree: %q %v", b, err)
	}

	// A wrong token is refused by the API.
	bad, _ := NewClient(Config{APIURL: gh.APIURL(), Token: "nope"}, nil)
	if err := FetchTarball(ctx, bad, "octo/site", sha, t.TempDir(), FetchOptions{}); !errors.Is(err, ErrFetch) {
		t.Fatalf("bad token: %v", err)
	}

	// Hostile archives: nothing lands outside dest.
	outside := t.TempDir()
	for name, c := range map[string]struct {
		tarball []byte
		lim     deploy.Limits
		want    error
	}{
		"dotdot":          {githubtest.HostileTarball("o-r-1", "o-r-1/../../escaped", "", []byte("x")), deploy.Limits{}, deploy.ErrUnsafeArchive},
		"absolute":        {githubtest.HostileTarball("o-r-1", "/tmp/escaped", "", []byte("x")), deploy.Limits{}, deploy.ErrUnsafeArchive},
		"escaping link":   {githubtest.HostileTarball("o-r-1", "o-r-1/l", "../../../../etc", nil), deploy.Limits{}, deploy.ErrUnsafeArchive},
		"over size limit": {githubtest.Tarball("o-r-1", "1", map[string]string{"big": strings.Repeat("a", 5000)}), deploy.Limits{MaxBytes: 4096}, deploy.ErrArchiveTooLarge},
		"too many files":  {githubtest.Tarball("o-r-1", "1", map[string]string{"a": "", "b": "", "c": ""}), deploy.Limits{MaxFiles: 3}, deploy.ErrArchiveTooLarge},
	} {
		sha := gh.CommitTarball("octo/site", "main", name, c.tarball)
		dest := filepath.Join(outside, "build-"+strings.ReplaceAll(name, " ", "-"))
		err := FetchTarball(ctx, cli, "octo/site", sha, dest, FetchOptions{Limits: c.lim})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	entries, _ := os.ReadDir(outside)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "build-") {
			t.Errorf("%s written outside the build directories", e.Name())
		}
	}
}

func TestConfigToken(t *testing.T) {
	if _, err := (Config{}).ReadToken(); !errors.Is(err, ErrNoToken) {
		t.Fatalf("no token: %v", err)
	}
	f := filepath.Join(t.TempDir(), "token")
	os.WriteFile(f, []byte("ghs_installation\n"), 0o600)
	if tok, err := (Config{TokenFile: f, Token: "ignored"}).ReadToken(); err != nil || tok != "ghs_installation" {
		t.Fatalf("token file: %q %v", tok, err)
	}
	os.WriteFile(f, []byte("ghs_rotated"), 0o600)
	if tok, _ := (Config{TokenFile: f}).ReadToken(); tok != "ghs_rotated" {
		t.Fatalf("rotated token file: %q", tok)
	}
}
