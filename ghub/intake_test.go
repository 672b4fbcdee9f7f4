package ghub

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/velocity9/v9/internal/githubtest"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// FuzzWebhookHandler sends arbitrary deliveries, correctly signed or not, through the
// handler's verification against two linked repositories: it never accepts a delivery it
// cannot verify, never refuses a correctly signed one as unauthorized, and never panics.
// (TestGitHubWebhookIntake checks the same answers through a real cluster.)
func FuzzWebhookHandler(f *testing.F) {
	links := []*statev1.GithubLink{
		{ComponentId: "c1", Repo: "octo/hello", Branch: "main", HookId: 7, Secret: []byte("s3cret")},
		{ComponentId: "c2", Repo: "octo/other", Branch: "main", HookId: 8, Secret: []byte("other")},
		{ComponentId: "c3", Repo: "octo/polled", Branch: "main", PollSeconds: 30},
	}
	sha := strings.Repeat("ab", 20)
	push := []byte(`{"ref":"refs/heads/main","after":"` + sha + `","repository":{"full_name":"octo/hello"},"head_commit":{"message":"m","author":{"name":"a"}},"pusher":{"name":"p"}}`)
	for _, mode := range []uint8{0, 1, 2} {
		for _, hookID := range []string{"7", "8", "", "x"} {
			f.Add("push", push, mode, hookID)
		}
		f.Add("ping", []byte(`{"zen":"z","repository":{"full_name":"octo/hello"}}`), mode, "7")
		f.Add("push", []byte(`{"ref":"refs/heads/main","deleted":true,"repository":{"full_name":"octo/hello"}}`), mode, "7")
		f.Add("issues", []byte(`{"repository":{"full_name":"octo/hello"}}`), mode, "")
		f.Add("push", []byte(`{"ref":`), mode, "7")
		f.Add("push", []byte(`{"repository":{"full_name":"octo/polled"}}`), mode, "")
		f.Add("push", []byte(`null`), mode, "7")
		f.Add("ping", []byte(`[]`), mode, "7")
		for event, file := range map[string]string{"check_run": "check_run.created.json", "discussion": "discussion.created.json", "package": "package.published.json"} {
			body, err := os.ReadFile("testdata/" + file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(event, body, mode, "7")
		}
	}
	f.Fuzz(func(t *testing.T, event string, body []byte, mode uint8, hookID string) {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Hook-ID", hookID)
		switch mode % 3 {
		case 0:
			h.Set("X-Hub-Signature-256", githubtest.Sign256([]byte("s3cret"), body))
		case 1:
			h.Set("X-Hub-Signature-256", githubtest.Sign256([]byte("wrong"), body))
		}
		v := verifyDelivery(links, h, body)
		switch {
		case v.code == 0 && (v.event == nil || len(v.links) == 0):
			t.Fatalf("accepted without an event or a verified link: %+v", v)
		case v.code != 0 && (v.event != nil || len(v.links) != 0):
			t.Fatalf("refused (%d) but returned an event or links: %+v", v.code, v)
		case mode%3 != 0 && v.code == 0:
			t.Fatalf("unverifiable delivery accepted: %+v", v)
		case mode%3 == 0 && v.code == http.StatusUnauthorized && (hookID == "7" || PeekTarget(hookID, body).Repo == "octo/hello"):
			t.Fatalf("a delivery signed with the linked secret refused: %s", v.msg)
		}
		for _, l := range v.links {
			if l.ComponentId != "c1" {
				t.Fatalf("verified against the wrong link %s", l.ComponentId)
			}
		}
		if v.event != nil && v.event.Kind == "push" && v.event.Push.Repo == "" {
			t.Fatalf("push without a repository: %+v", v.event.Push)
		}
		// A delivery signed by the linked secret of an event v9 does not act on is accepted
		// as ignored exactly when it is JSON; a ping or push must be a JSON object.
		signed := mode%3 == 0 && (hookID == "7" || PeekTarget(hookID, body).Repo == "octo/hello")
		if signed && event != "" && event != "ping" && event != "push" {
			if json.Valid(body) != (v.code == 0) || (v.code == 0 && v.event.Kind != "ignored") {
				t.Fatalf("signed %s event (JSON: %v) answered %d %+v", event, json.Valid(body), v.code, v.event)
			}
		}
		if v.code == 0 && (event == "ping" || event == "push") {
			if tb := bytes.TrimSpace(body); len(tb) == 0 || tb[0] != '{' {
				t.Fatalf("%s that is not a JSON object accepted: %q", event, body)
			}
		}
	})
}
