package ghub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-github/v60/github"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/id"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9spec "github.com/velocity9/v9/spec"
)

// webhookURL is where GitHub is told to post webhooks.
func (s *Service) webhookURL() string {
	if s.o.GitHub.WebhookURL != "" {
		return s.o.GitHub.WebhookURL
	}
	return "http://" + s.o.APIAddr() + WebhookPath
}

func (s *Service) github() (*github.Client, error) {
	gh, err := NewClient(s.o.GitHub, nil)
	if err != nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, err)
	}
	return gh, nil
}

// CreateLinked creates a component built from a GitHub repository. It runs on the leader
// (the node forwards the call there): it checks the branch, creates the component, creates
// the repository webhook with a fresh secret (or, with poll_seconds, none), records the
// link, and commits a pending deployment of the branch head that the build loop picks up at
// once.
func (s *Service) CreateLinked(ctx context.Context, req *componentv1.CreateRequest) (*componentv1.CreateResponse, error) {
	src := req.GetSource()
	owner, repo, err := SplitRepo(src.GetGithubRepo())
	if err != nil {
		return nil, invalidArg("%v", err)
	}
	branch := src.GetBranch()
	if branch == "" {
		branch = "main"
	}
	if err := fsm.ValidName(req.Name); err != nil {
		return nil, invalidArg("%v", err)
	}
	if _, err := s.state.Component(req.Name); err == nil {
		return nil, connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("component %q already exists", req.Name))
	}
	gh, err := s.github()
	if err != nil {
		return nil, err
	}
	head, _, err := gh.Repositories.GetBranch(ctx, owner, repo, branch, 3)
	if err != nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("read branch %s of %s/%s (does it exist, and can the cluster's token read it?): %w", branch, owner, repo, err))
	}

	rt := req.Runtime
	if rt == statev1.Runtime_RUNTIME_UNSPECIFIED {
		rt = statev1.Runtime_RUNTIME_WASM
	}
	spec := v9spec.Defaulted(req.Spec)
	if err := fsm.ValidSpec(rt, spec); err != nil {
		return nil, err // refused before anything is created on GitHub
	}
	c := &statev1.Component{
		Id: id.New(), Name: req.Name, Owner: req.Owner, Runtime: rt, Spec: spec, Replicas: v9spec.InitialReplicas(spec),
		Source:  &statev1.Source{GithubRepo: owner + "/" + repo, Branch: branch},
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
	}
	link := &statev1.GithubLink{ComponentId: c.Id, Repo: owner + "/" + repo, Branch: branch, PollSeconds: req.PollSeconds}
	// Press start: deploy the branch head now.
	commit := head.GetCommit()
	d := &statev1.Deployment{
		Id: id.New(), ComponentId: c.Id, CommitSha: commit.GetSHA(), CommitMessage: commit.GetCommit().GetMessage(),
		Author: commit.GetCommit().GetAuthor().GetName(), Branch: branch,
		Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
	}
	if req.PollSeconds == 0 {
		secret := make([]byte, 32)
		rand.Read(secret)
		link.Secret = []byte(hex.EncodeToString(secret))
		// The hook exists before its link is committed: the ping GitHub sends to a new hook
		// may arrive first, and is answered "pong" without acting (ServeWebhook).
		hook, _, err := gh.Repositories.CreateHook(ctx, owner, repo, &github.Hook{
			Active: github.Bool(true),
			// GitHub pings every new hook whatever its events; "ping" is not an event to ask for.
			Events: []string{"push"},
			Config: &github.HookConfig{URL: github.String(s.webhookURL()), ContentType: github.String("json"), Secret: github.String(string(link.Secret))},
		})
		if err != nil {
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("create the webhook on %s/%s (the token needs admin:repo_hook or the repository's webhooks permission; --poll avoids webhooks): %w", owner, repo, err))
		}
		link.HookId = hook.GetID()
		if s.o.Sealer != nil {
			// Sealed before it enters Raft: the state holds ciphertext only.
			if link.SecretKeyId, link.SecretNonce, link.Secret, err = s.o.Sealer.SealSecret(ctx, c.Id, webhookSecretName, link.Secret); err != nil {
				s.deleteHook(ctx, link)
				return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("seal the webhook secret: %w", err))
			}
		}
	}
	// One entry: the component, its link and its first deployment, or nothing.
	idx, err := s.cluster.Apply(ctx, &statev1.Command{Op: &statev1.Command_CreateLinkedComponent{CreateLinkedComponent: &statev1.CreateLinkedComponent{
		Component: c, Link: link, Deployment: d,
	}}})
	if err != nil {
		// A write whose fate is unknown (leadership lost while committing) may have created
		// the component: its hook stays then, and goes with the component.
		if _, gerr := s.state.ComponentByID(c.Id); gerr != nil {
			s.deleteHook(ctx, link)
		}
		return nil, err
	}
	s.log.Info("component linked to github", "component", c.Name, "repo", link.Repo, "branch", branch, "hook", link.HookId, "poll_seconds", link.PollSeconds)
	if _, err := s.state.WaitForIndex(ctx, idx); err != nil {
		return nil, err
	}
	c, _ = s.state.Component(req.Name)
	d, _ = s.state.Deployment(d.Id)
	if d != nil {
		d.BuildLog = ""
	}
	return &componentv1.CreateResponse{Component: c, Deployment: d, Index: idx}, nil
}

func (s *Service) deleteHook(ctx context.Context, l *statev1.GithubLink) {
	if l.HookId == 0 {
		return
	}
	gh, owner, repo, ok := s.repoClient(l.Repo, "delete webhook", "hook", l.HookId)
	if !ok {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if resp, err := gh.Repositories.DeleteHook(dctx, owner, repo, l.HookId); err != nil && (resp == nil || resp.StatusCode != 404) {
		s.log.Warn("delete webhook", "repo", l.Repo, "hook", l.HookId, "err", err)
		return
	}
	s.log.Info("webhook deleted", "repo", l.Repo, "hook", l.HookId)
}

// DeleteComponent deletes a component, and the webhook of its repository link.
func (s *Service) DeleteComponent(ctx context.Context, name string) (uint64, error) {
	var link *statev1.GithubLink
	if c, err := s.state.Component(name); err == nil {
		link, _ = s.state.GithubLink(c.Id)
	}
	idx, err := s.cluster.Apply(ctx, &statev1.Command{Op: &statev1.Command_DeleteComponent{DeleteComponent: &statev1.DeleteComponent{Name: name}}})
	if err != nil {
		return 0, err
	}
	if link != nil {
		s.deleteHook(ctx, link)
	}
	return idx, nil
}

func invalidArg(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}
