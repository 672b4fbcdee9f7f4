package ghub

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-github/v60/github"

	"github.com/velocity9/v9/fsm"
	ids "github.com/velocity9/v9/internal/id"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// WebhookPath is where every node's API port receives GitHub webhooks.
const WebhookPath = "/github/webhook"

// webhookAnswer is the JSON a webhook delivery gets back (GitHub shows it in the hook's
// "Recent Deliveries").
type webhookAnswer struct {
	Result      string   `json:"result"` // "pong", "deployed", "duplicate", "ignored"
	Message     string   `json:"message,omitempty"`
	Deployments []string `json:"deployments,omitempty"`
}

// ServeWebhook receives a GitHub webhook on any node. It verifies the signature against the
// secret of the linked repository before it trusts anything in the delivery, then records a
// pending deployment for a push to a linked branch; the leader's build loop does the rest.
func (s *Service) ServeWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhooks are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "payload over GitHub's 25 MB limit", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	delivery := github.DeliveryID(r)
	v := verifyDelivery(s.openLinks(r.Context(), s.state.GithubLinks()), r.Header, body)
	// Anyone can send these two, so they are logged at most once per kind per
	// loglimit interval, with the number of deliveries held back since the last line.
	switch v.code {
	case http.StatusUnauthorized:
		if ok, n := s.webhookLogs.Allow("bad signature"); ok {
			s.log.Warn("webhook rejected: bad signature", "delivery", delivery, "repo", v.target.Repo, "hook", v.target.HookID, "suppressed", n)
		}
	case http.StatusNotFound:
		if ok, n := s.webhookLogs.Allow("no link"); ok {
			s.log.Info("webhook for no linked repository", "delivery", delivery, "repo", v.target.Repo, "hook", v.target.HookID, "suppressed", n)
		}
	}
	if v.code == http.StatusNotFound && github.WebHookType(r) == "ping" {
		// A new hook's ping can arrive before its link is committed (CreateLinked creates
		// the hook first). A ping asks for nothing, so it is answered without being verified.
		writeWebhookAnswer(w, http.StatusOK, webhookAnswer{Result: "pong", Message: "no component is linked to this hook yet"})
		return
	}
	if v.code != 0 {
		http.Error(w, v.msg, v.code)
		return
	}
	ev, verified := v.event, v.links
	switch ev.Kind {
	case "ping":
		writeWebhookAnswer(w, http.StatusOK, webhookAnswer{Result: "pong"})
		return
	case "push":
	default:
		writeWebhookAnswer(w, http.StatusAccepted, webhookAnswer{Result: "ignored", Message: "event " + github.WebHookType(r) + " is not acted on"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	ans := webhookAnswer{Result: "ignored"}
	for _, l := range verified {
		p := ev.Push
		if p.Deleted || p.Branch != l.Branch || !strings.EqualFold(p.Repo, l.Repo) {
			ans.Message = "push to " + p.Repo + " " + refName(p) + " is not the linked branch " + l.Branch
			continue
		}
		id, dup, err := s.recordPush(ctx, l, p, delivery)
		if errors.Is(err, fsm.ErrNotFound) || connect.CodeOf(err) == connect.CodeNotFound {
			ans.Message = "the linked component was deleted"
			continue
		}
		if err != nil {
			s.log.Warn("record push", "delivery", delivery, "err", err)
			http.Error(w, "record the push: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if dup {
			ans.Result, ans.Message = "duplicate", "delivery "+delivery+" was recorded before"
			continue
		}
		ans.Result = "deployed"
		ans.Deployments = append(ans.Deployments, id)
	}
	writeWebhookAnswer(w, http.StatusAccepted, ans)
}

// verdict is what verifyDelivery decided: an error answer (code != 0), or a verified event
// and the links whose secret signed it.
type verdict struct {
	code   int
	msg    string
	target WebhookTarget
	event  *Event
	links  []*statev1.GithubLink
}

// verifyDelivery checks a delivery against the links of the state, before anything in it is
// trusted: the unverified hook id and repository only choose which secrets to try. It is
// pure, so it can be fuzzed without a cluster.
func verifyDelivery(links []*statev1.GithubLink, h http.Header, body []byte) verdict {
	v := verdict{target: PeekTarget(h.Get("X-GitHub-Hook-ID"), body)}
	var candidates []*statev1.GithubLink
	for _, l := range links {
		if (v.target.HookID != 0 && l.HookId == v.target.HookID) || (v.target.Repo != "" && strings.EqualFold(l.Repo, v.target.Repo)) {
			candidates = append(candidates, l)
		}
	}
	if len(candidates) == 0 {
		if !json.Valid(body) {
			v.code, v.msg = http.StatusBadRequest, "malformed payload: not JSON"
			return v
		}
		v.code, v.msg = http.StatusNotFound, "no component is linked to this repository or hook"
		return v
	}
	var payload []byte
	for _, l := range candidates {
		p, err := VerifyWebhook(h.Get("Content-Type"), body, h.Get(github.SHA256SignatureHeader), l.Secret)
		if errors.Is(err, ErrBadPayload) {
			v.code, v.msg = http.StatusBadRequest, err.Error()
			return v
		}
		if err == nil {
			payload = p
			v.links = append(v.links, l)
		}
	}
	if len(v.links) == 0 {
		v.code, v.msg = http.StatusUnauthorized, "signature missing or wrong (X-Hub-Signature-256)"
		return v
	}
	ev, err := ParseWebhook(h.Get(github.EventTypeHeader), payload)
	if err != nil {
		v.code, v.msg, v.links = http.StatusBadRequest, err.Error(), nil
		return v
	}
	v.event = ev
	return v
}

func refName(p *Push) string {
	if p.Deleted {
		return "(branch deleted)"
	}
	if p.Branch == "" {
		return "(not a branch)"
	}
	return p.Branch
}

// recordPush commits a pending deployment for a push. A delivery recorded before (GitHub
// redelivers with the same X-GitHub-Delivery) reports dup and records nothing.
func (s *Service) recordPush(ctx context.Context, l *statev1.GithubLink, p *Push, delivery string) (id string, dup bool, err error) {
	d := &statev1.Deployment{
		Id: ids.New(), ComponentId: l.ComponentId, CommitSha: p.SHA, CommitMessage: p.Message,
		Author: p.Author, Pusher: p.Pusher, Branch: l.Branch, DeliveryId: delivery,
		Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
	}
	if _, err := s.cluster.Apply(ctx, &statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: d}}}); err != nil {
		if errors.Is(err, fsm.ErrAlreadyExists) || connect.CodeOf(err) == connect.CodeAlreadyExists {
			return "", true, nil
		}
		return "", false, err
	}
	s.log.Info("push recorded", "component_id", l.ComponentId, "deployment", d.Id, "sha", shortSHA(p.SHA), "delivery", delivery)
	return d.Id, false, nil
}

func writeWebhookAnswer(w http.ResponseWriter, code int, a webhookAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(a)
}
