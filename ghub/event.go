package ghub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/go-github/v60/github"
)

// MaxWebhookBytes is the largest webhook payload GitHub sends (it drops bigger ones).
const MaxWebhookBytes = 25 << 20

// Webhook errors.
var (
	// ErrBadSignature: the X-Hub-Signature-256 header is missing or does not match.
	ErrBadSignature = errors.New("webhook signature missing or wrong")
	// ErrBadPayload: the payload is not a webhook event GitHub would send.
	ErrBadPayload = errors.New("malformed webhook payload")
)

// WebhookTarget is what a receiver reads from a delivery before verifying it, to find the
// secret to verify it with: the hook id header and the repository in the payload.
type WebhookTarget struct {
	HookID int64
	Repo   string // "owner/repo"; "" when the payload does not name one
}

// PeekTarget reads the unverified hook id and repository of a delivery. It trusts nothing:
// the result only chooses which secret to check the signature against.
func PeekTarget(hookIDHeader string, payload []byte) WebhookTarget {
	var t WebhookTarget
	t.HookID, _ = strconv.ParseInt(strings.TrimSpace(hookIDHeader), 10, 64)
	var p struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if json.Unmarshal(payload, &p) == nil {
		t.Repo = p.Repository.FullName
	}
	return t
}

// VerifyWebhook checks the X-Hub-Signature-256 of a delivery against secret with go-github
// and returns the JSON payload. Only JSON deliveries signed with SHA-256 are accepted.
func VerifyWebhook(contentType string, body []byte, signature256 string, secret []byte) ([]byte, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("%w: no secret to verify with", ErrBadSignature)
	}
	if !strings.HasPrefix(signature256, "sha256=") {
		return nil, fmt.Errorf("%w: no X-Hub-Signature-256 header", ErrBadSignature)
	}
	if mt, _, _ := strings.Cut(contentType, ";"); strings.TrimSpace(mt) != "" {
		contentType = strings.TrimSpace(mt)
	}
	payload, err := github.ValidatePayloadFromBody(contentType, bytes.NewReader(body), signature256, secret)
	if err != nil {
		if strings.Contains(err.Error(), "Content-Type") {
			return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return payload, nil
}

// Event is a parsed webhook delivery v9 acts on.
type Event struct {
	Kind string // "ping", "push", or "ignored" for every other event (not decoded)
	Push *Push  // set when Kind is "push"
	Repo string // "owner/repo" when the payload names it
}

// Push is the part of a push event a deployment records.
type Push struct {
	Repo    string // "owner/repo"
	Branch  string // "" when the ref is not a branch (a tag)
	SHA     string // the commit now at the head of Branch
	Message string
	Author  string
	Pusher  string
	Deleted bool // the branch was deleted: nothing to build
}

// ParseWebhook parses a verified payload of the given X-GitHub-Event type. Only "ping" and
// "push" are decoded (with go-github); every other event is "ignored" once it is JSON, so a
// field go-github types differently from GitHub's payload of an event v9 does not act on
// never refuses the delivery. A ping or push must be a JSON object: `null` is malformed.
func ParseWebhook(eventType string, payload []byte) (*Event, error) {
	if eventType == "" {
		return nil, fmt.Errorf("%w: no X-GitHub-Event header", ErrBadPayload)
	}
	if !json.Valid(payload) {
		return nil, fmt.Errorf("%w: %s payload is not JSON", ErrBadPayload, eventType)
	}
	if eventType != "ping" && eventType != "push" {
		return &Event{Kind: "ignored"}, nil
	}
	if t := bytes.TrimLeft(payload, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: %s payload is not a JSON object", ErrBadPayload, eventType)
	}
	ev, err := github.ParseWebHook(eventType, payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	switch e := ev.(type) {
	case *github.PingEvent:
		return &Event{Kind: "ping"}, nil
	case *github.PushEvent:
		p := &Push{
			Repo:    e.GetRepo().GetFullName(),
			SHA:     e.GetAfter(),
			Message: e.GetHeadCommit().GetMessage(),
			Author:  e.GetHeadCommit().GetAuthor().GetName(),
			Pusher:  e.GetPusher().GetName(),
			Deleted: e.GetDeleted(),
		}
		if b, ok := strings.CutPrefix(e.GetRef(), "refs/heads/"); ok {
			p.Branch = b
		}
		if p.Repo == "" {
			return nil, fmt.Errorf("%w: push without repository.full_name", ErrBadPayload)
		}
		if !p.Deleted && !isSHA(p.SHA) {
			return nil, fmt.Errorf("%w: push with after %q, not a commit id", ErrBadPayload, p.SHA)
		}
		if p.Author == "" {
			p.Author = e.GetHeadCommit().GetAuthor().GetLogin()
		}
		return &Event{Kind: "push", Push: p, Repo: p.Repo}, nil
	}
	return nil, fmt.Errorf("%w: %s payload decoded to %T", ErrBadPayload, eventType, ev)
}

func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
