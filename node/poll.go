package node

import (
	"context"
	"time"

	"github.com/velocity9/v9/deploy"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// pollLoop is the fallback for repositories linked without a webhook (poll_seconds > 0).
// A leader controller: while this node leads, it reads each such branch's head through the API and records a
// pending deployment for a commit it has not deployed yet.
func (n *Node) pollLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, l := range n.fsm.Store.GithubLinks() {
			if l.PollSeconds == 0 || time.Since(last[l.ComponentId]) < time.Duration(l.PollSeconds)*time.Second {
				continue
			}
			last[l.ComponentId] = time.Now()
			n.pollOnce(ctx, l)
		}
	}
}

func (n *Node) pollOnce(ctx context.Context, l *statev1.GithubLink) {
	owner, repo, err := deploy.SplitRepo(l.Repo)
	if err != nil {
		return
	}
	gh, err := deploy.NewGitHubClient(n.cfg.GitHub, nil)
	if err != nil {
		n.log.Warn("poll github", "repo", l.Repo, "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, _, err := gh.Repositories.GetBranch(pctx, owner, repo, l.Branch, 3)
	if err != nil {
		n.log.Warn("poll github", "repo", l.Repo, "branch", l.Branch, "err", err)
		return
	}
	sha := b.GetCommit().GetSHA()
	for _, d := range n.fsm.Store.Deployments(l.ComponentId) {
		if d.CommitSha == sha {
			return // deployed, building, or failed already
		}
	}
	p := &deploy.Push{Repo: l.Repo, Branch: l.Branch, SHA: sha, Message: b.GetCommit().GetCommit().GetMessage(),
		Author: b.GetCommit().GetCommit().GetAuthor().GetName()}
	if _, _, err := n.recordPush(pctx, l, p, "poll:"+sha); err != nil {
		n.log.Warn("record polled commit", "repo", l.Repo, "err", err)
	}
}
