package node

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

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/fsm"
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

// serveWebhook receives a GitHub webhook on any node. It verifies the signature against the
// secret of the linked repository before it trusts anything in the delivery, then records a
// pending deployment for a push to a linked branch; the leader's build loop does the rest.
func (n *Node) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhooks are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, deploy.MaxWebhookBytes))
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
	target := deploy.PeekTarget(r.Header.Get("X-GitHub-Hook-ID"), body)
	var candidates []*statev1.GithubLink
	for _, l := range n.fsm.Store.GithubLinks() {
		if (target.HookID != 0 && l.HookId == target.HookID) || (target.Repo != "" && strings.EqualFold(l.Repo, target.Repo)) {
			candidates = append(candidates, l)
		}
	}
	if len(candidates) == 0 {
		if !json.Valid(body) {
			http.Error(w, "malformed payload: not JSON", http.StatusBadRequest)
			return
		}
		n.log.Info("webhook for no linked repository", "delivery", delivery, "repo", target.Repo, "hook", target.HookID)
		http.Error(w, "no component is linked to this repository or hook", http.StatusNotFound)
		return
	}
	var payload []byte
	var verified []*statev1.GithubLink
	for _, l := range candidates {
		p, err := deploy.VerifyWebhook(r.Header.Get("Content-Type"), body, r.Header.Get(github.SHA256SignatureHeader), l.Secret)
		if errors.Is(err, deploy.ErrBadPayload) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err == nil {
			payload = p
			verified = append(verified, l)
		}
	}
	if len(verified) == 0 {
		n.log.Warn("webhook rejected: bad signature", "delivery", delivery, "repo", target.Repo, "hook", target.HookID)
		http.Error(w, "signature missing or wrong (X-Hub-Signature-256)", http.StatusUnauthorized)
		return
	}
	ev, err := deploy.ParseWebhook(github.WebHookType(r), payload)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
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
		id, dup, err := n.recordPush(ctx, l, p, delivery)
		if err != nil {
			n.log.Warn("record push", "delivery", delivery, "err", err)
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

func refName(p *deploy.Push) string {
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
func (n *Node) recordPush(ctx context.Context, l *statev1.GithubLink, p *deploy.Push, delivery string) (id string, dup bool, err error) {
	d := &statev1.Deployment{
		Id: newID(), ComponentId: l.ComponentId, CommitSha: p.SHA, CommitMessage: p.Message,
		Author: p.Author, Pusher: p.Pusher, Branch: l.Branch, DeliveryId: delivery,
		Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
	}
	if _, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: d}}}); err != nil {
		if errors.Is(err, fsm.ErrAlreadyExists) || connect.CodeOf(err) == connect.CodeAlreadyExists {
			return "", true, nil
		}
		return "", false, err
	}
	n.log.Info("push recorded", "component_id", l.ComponentId, "deployment", d.Id, "sha", shortSHA(p.SHA), "delivery", delivery)
	return d.Id, false, nil
}

func writeWebhookAnswer(w http.ResponseWriter, code int, a webhookAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(a)
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
