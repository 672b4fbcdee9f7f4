package ghub

import (
	"context"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// PollLoop is the fallback for repositories linked without a webhook (poll_seconds > 0).
// A leader controller, run for each term with a ctx that ends with it: it reads each such branch's head through the API and records a
// pending deployment for a commit it has not deployed yet.
func (s *Service) PollLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, l := range s.state.GithubLinks() {
			if l.PollSeconds == 0 || time.Since(last[l.ComponentId]) < time.Duration(l.PollSeconds)*time.Second {
				continue
			}
			last[l.ComponentId] = time.Now()
			s.pollOnce(ctx, l)
		}
	}
}

func (s *Service) pollOnce(ctx context.Context, l *statev1.GithubLink) {
	gh, owner, repo, ok := s.repoClient(l.Repo, "poll github")
	if !ok {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, _, err := gh.Repositories.GetBranch(pctx, owner, repo, l.Branch, 3)
	if err != nil {
		s.log.Warn("poll github", "repo", l.Repo, "branch", l.Branch, "err", err)
		return
	}
	sha := b.GetCommit().GetSHA()
	for _, d := range s.state.Deployments(l.ComponentId) {
		if d.CommitSha == sha {
			return // deployed, building, or failed already
		}
	}
	p := &Push{Repo: l.Repo, Branch: l.Branch, SHA: sha, Message: b.GetCommit().GetCommit().GetMessage(),
		Author: b.GetCommit().GetCommit().GetAuthor().GetName()}
	if _, _, err := s.recordPush(pctx, l, p, "poll:"+sha); err != nil {
		s.log.Warn("record polled commit", "repo", l.Repo, "err", err)
	}
}
