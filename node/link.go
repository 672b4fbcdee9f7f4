package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-github/v60/github"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/fsm"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// webhookURL is where GitHub is told to post webhooks.
func (n *Node) webhookURL() string {
	if n.cfg.GitHub.WebhookURL != "" {
		return n.cfg.GitHub.WebhookURL
	}
	return "http://" + n.APIAddr() + WebhookPath
}

func (n *Node) github() (*github.Client, error) {
	gh, err := deploy.NewGitHubClient(n.cfg.GitHub, nil)
	if err != nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, err)
	}
	return gh, nil
}

// CreateLinked creates a component built from a GitHub repository: the leader checks the
// branch, creates the component, creates the repository webhook with a fresh secret (or, with
// poll_seconds, none), records the link, and commits a pending deployment of the branch head
// that its build loop picks up at once. A follower forwards the call to the leader.
func (n *Node) CreateLinked(ctx context.Context, req *componentv1.CreateRequest) (*componentv1.CreateResponse, error) {
	var resp *componentv1.CreateResponse
	_, err := n.leaderCall(ctx, func() (uint64, error) {
		var err error
		resp, err = n.createLinkedAsLeader(ctx, req)
		return 0, err
	}, func(p *peerClient) (uint64, error) {
		r, err := p.component.Create(ctx, connect.NewRequest(req))
		if err != nil {
			return 0, err
		}
		resp = r.Msg
		return 0, nil
	})
	if err != nil {
		return nil, err
	}
	// Read-your-writes on the node the caller asked.
	if _, err := n.fsm.Store.WaitForIndex(ctx, resp.Index); err != nil {
		return nil, err
	}
	return resp, nil
}

func (n *Node) createLinkedAsLeader(ctx context.Context, req *componentv1.CreateRequest) (*componentv1.CreateResponse, error) {
	src := req.GetSource()
	owner, repo, err := deploy.SplitRepo(src.GetGithubRepo())
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
	if _, err := n.fsm.Store.Component(req.Name); err == nil {
		return nil, connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("component %q already exists", req.Name))
	}
	gh, err := n.github()
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
	spec := req.Spec
	if spec == nil {
		spec = &statev1.ComponentSpec{}
	}
	if spec.ScaleMax == 0 && spec.ScaleMin == 0 {
		spec.ScaleMin, spec.ScaleMax = 1, 1
	}
	c := &statev1.Component{
		Name: req.Name, Owner: req.Owner, Runtime: rt, Spec: spec, Replicas: spec.ScaleMin,
		Source:  &statev1.Source{GithubRepo: owner + "/" + repo, Branch: branch},
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
	}
	if _, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: c}}}); err != nil {
		return nil, err
	}
	c, err = n.fsm.Store.Component(req.Name)
	if err != nil {
		return nil, err
	}
	undo := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		n.Apply(dctx, &statev1.Command{Op: &statev1.Command_DeleteComponent{DeleteComponent: &statev1.DeleteComponent{Name: req.Name}}})
	}

	link := &statev1.GithubLink{ComponentId: c.Id, Repo: owner + "/" + repo, Branch: branch, PollSeconds: req.PollSeconds}
	putLink := func() error {
		_, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_PutGithubLink{PutGithubLink: &statev1.PutGithubLink{Link: link}}})
		return err
	}
	if req.PollSeconds == 0 {
		secret := make([]byte, 32)
		rand.Read(secret)
		link.Secret = []byte(hex.EncodeToString(secret))
		// Record the secret before the hook exists, so that the ping GitHub sends to a new
		// hook at once already verifies (by repository name) on every node.
		if err := putLink(); err != nil {
			undo()
			return nil, err
		}
		hook, _, err := gh.Repositories.CreateHook(ctx, owner, repo, &github.Hook{
			Active: github.Bool(true),
			// GitHub pings every new hook whatever its events; "ping" is not an event to ask for.
			Events: []string{"push"},
			Config: &github.HookConfig{URL: github.String(n.webhookURL()), ContentType: github.String("json"), Secret: github.String(string(link.Secret))},
		})
		if err != nil {
			undo()
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("create the webhook on %s/%s (the token needs admin:repo_hook or the repository's webhooks permission; --poll avoids webhooks): %w", owner, repo, err))
		}
		link.HookId = hook.GetID()
	}
	if err := putLink(); err != nil {
		n.deleteHook(ctx, link)
		undo()
		return nil, err
	}
	n.log.Info("component linked to github", "component", c.Name, "repo", link.Repo, "branch", branch, "hook", link.HookId, "poll_seconds", link.PollSeconds)

	// Press start: deploy the branch head now.
	commit := head.GetCommit()
	d := &statev1.Deployment{
		Id: newID(), ComponentId: c.Id, CommitSha: commit.GetSHA(), CommitMessage: commit.GetCommit().GetMessage(),
		Author: commit.GetCommit().GetAuthor().GetName(), Branch: branch,
		Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
	}
	idx, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: d}}})
	if err != nil {
		return nil, err
	}
	c, _ = n.fsm.Store.Component(req.Name)
	d, _ = n.fsm.Store.Deployment(d.Id)
	return &componentv1.CreateResponse{Component: c, Deployment: stripLog(d), Index: idx}, nil
}

func (n *Node) deleteHook(ctx context.Context, l *statev1.GithubLink) {
	if l.HookId == 0 {
		return
	}
	owner, repo, err := deploy.SplitRepo(l.Repo)
	if err != nil {
		return
	}
	gh, err := deploy.NewGitHubClient(n.cfg.GitHub, nil)
	if err != nil {
		n.log.Warn("delete webhook", "repo", l.Repo, "hook", l.HookId, "err", err)
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if resp, err := gh.Repositories.DeleteHook(dctx, owner, repo, l.HookId); err != nil && (resp == nil || resp.StatusCode != 404) {
		n.log.Warn("delete webhook", "repo", l.Repo, "hook", l.HookId, "err", err)
		return
	}
	n.log.Info("webhook deleted", "repo", l.Repo, "hook", l.HookId)
}

// DeleteComponent deletes a component, and the webhook of its repository link.
func (n *Node) DeleteComponent(ctx context.Context, name string) (uint64, error) {
	var link *statev1.GithubLink
	if c, err := n.fsm.Store.Component(name); err == nil {
		link, _ = n.fsm.Store.GithubLink(c.Id)
	}
	idx, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_DeleteComponent{DeleteComponent: &statev1.DeleteComponent{Name: name}}})
	if err != nil {
		return 0, err
	}
	if link != nil {
		n.deleteHook(ctx, link)
	}
	return idx, nil
}

func stripLog(d *statev1.Deployment) *statev1.Deployment {
	if d != nil {
		d.BuildLog = ""
	}
	return d
}

// errNotGitHub is returned for build logs of uploads.
var errNotGitHub = errors.New("this deployment was uploaded, not built: it has no build log")
