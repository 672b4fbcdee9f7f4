package ghub

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"github.com/google/go-github/v60/github"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/deploy"
	githubv1 "github.com/velocity9/v9/rpc/gen/v9/github/v1"
)

// Repos serves GitHubService: the signed-in user's repositories, branches and v9.toml, read
// from GitHub with the user's own OAuth grant (Grant), never the cluster's token. It only
// reads; linking a picked repository is ComponentService.Create.
type Repos struct {
	// APIURL is GitHub's REST API ("" for api.github.com), as Config.APIURL.
	APIURL string
	// Grant returns the caller's GitHub OAuth token (auth.CallerGitHubToken).
	Grant func(ctx context.Context) (string, error)
	// HTTPClient reaches GitHub; nil: http.DefaultClient.
	HTTPClient *http.Client
}

// reposPerPage is how many repositories one ListRepositories page holds.
const reposPerPage = 50

func (r *Repos) client(ctx context.Context) (*github.Client, error) {
	tok, err := r.Grant(ctx)
	if err != nil {
		return nil, err
	}
	gh := github.NewClient(r.HTTPClient).WithAuthToken(tok)
	if r.APIURL != "" {
		if gh, err = gh.WithEnterpriseURLs(r.APIURL, r.APIURL); err != nil {
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("github api url %q: %w", r.APIURL, err))
		}
	}
	return gh, nil
}

// gitHubError turns a GitHub answer into words and a code the console can act on.
func gitHubError(what string, resp *github.Response, err error) error {
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s: GitHub no longer accepts this session's grant (revoked or expired): sign in with GitHub again", what))
		case http.StatusNotFound:
			return connect.NewError(connect.CodeNotFound, fmt.Errorf("%s: GitHub says it does not exist or your grant cannot see it", what))
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("%s: %w", what, err))
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: GitHub: %w", what, err))
}

// ListRepositories implements GitHubService.
func (r *Repos) ListRepositories(ctx context.Context, req *connect.Request[githubv1.ListRepositoriesRequest]) (*connect.Response[githubv1.ListRepositoriesResponse], error) {
	gh, err := r.client(ctx)
	if err != nil {
		return nil, err
	}
	page := int(req.Msg.Page)
	if page < 1 {
		page = 1
	}
	repos, resp, err := gh.Repositories.ListByAuthenticatedUser(ctx, &github.RepositoryListByAuthenticatedUserOptions{
		Affiliation: "owner,collaborator,organization_member", Sort: "pushed", Direction: "desc",
		ListOptions: github.ListOptions{Page: page, PerPage: reposPerPage},
	})
	if err != nil {
		return nil, gitHubError("list your repositories", resp, err)
	}
	out := &githubv1.ListRepositoriesResponse{More: resp.NextPage != 0}
	for _, rp := range repos {
		x := &githubv1.Repository{FullName: rp.GetFullName(), DefaultBranch: rp.GetDefaultBranch(), Private: rp.GetPrivate(),
			Description: rp.GetDescription(), HtmlUrl: rp.GetHTMLURL()}
		if t := rp.GetPushedAt(); !t.IsZero() {
			x.PushedTime = timestamppb.New(t.Time)
		}
		out.Repositories = append(out.Repositories, x)
	}
	return connect.NewResponse(out), nil
}

// ListBranches implements GitHubService.
func (r *Repos) ListBranches(ctx context.Context, req *connect.Request[githubv1.ListBranchesRequest]) (*connect.Response[githubv1.ListBranchesResponse], error) {
	owner, name, err := SplitRepo(req.Msg.Repo)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	gh, err := r.client(ctx)
	if err != nil {
		return nil, err
	}
	out := &githubv1.ListBranchesResponse{}
	opt := &github.BranchListOptions{ListOptions: github.ListOptions{PerPage: 100}}
	// At most 10 pages: a thousand branches is more than a picker shows.
	for i := 0; i < 10; i++ {
		bs, resp, err := gh.Repositories.ListBranches(ctx, owner, name, opt)
		if err != nil {
			return nil, gitHubError("list the branches of "+req.Msg.Repo, resp, err)
		}
		for _, b := range bs {
			out.Branches = append(out.Branches, &githubv1.Branch{Name: b.GetName(), Sha: b.GetCommit().GetSHA()})
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return connect.NewResponse(out), nil
}

// CheckManifest implements GitHubService: it reads v9.toml at the branch head and parses
// it as a deploy would (package deploy's rules).
func (r *Repos) CheckManifest(ctx context.Context, req *connect.Request[githubv1.CheckManifestRequest]) (*connect.Response[githubv1.CheckManifestResponse], error) {
	owner, name, err := SplitRepo(req.Msg.Repo)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	if req.Msg.Branch == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("check v9.toml: give a branch"))
	}
	gh, err := r.client(ctx)
	if err != nil {
		return nil, err
	}
	br, resp, err := gh.Repositories.GetBranch(ctx, owner, name, req.Msg.Branch, 0)
	if err != nil {
		return nil, gitHubError("read branch "+req.Msg.Branch+" of "+req.Msg.Repo, resp, err)
	}
	sha := br.GetCommit().GetSHA()
	out := &githubv1.CheckManifestResponse{Sha: sha}
	f, _, resp, err := gh.Repositories.GetContents(ctx, owner, name, deploy.ManifestFile, &github.RepositoryContentGetOptions{Ref: sha})
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		out.Problems = []string{"the branch has no " + deploy.ManifestFile + " at its root: add one (see examples/hello-wasm)"}
		return connect.NewResponse(out), nil
	}
	if err != nil {
		return nil, gitHubError("read "+deploy.ManifestFile+" of "+req.Msg.Repo, resp, err)
	}
	if f == nil {
		out.Problems = []string{deploy.ManifestFile + " is not a file"}
		return connect.NewResponse(out), nil
	}
	out.Found = true
	text, err := f.GetContent()
	if err != nil {
		out.Problems = []string{"GitHub sent " + deploy.ManifestFile + " in a form v9 cannot read: " + err.Error()}
		return connect.NewResponse(out), nil
	}
	m, err := deploy.ParseManifest([]byte(text))
	var merr *deploy.ManifestError
	switch {
	case errors.As(err, &merr):
		for _, p := range merr.Problems {
			out.Problems = append(out.Problems, p.String())
		}
	case err != nil:
		out.Problems = []string{err.Error()}
	default:
		out.Name, out.Runtime = m.Name, m.Runtime
	}
	return connect.NewResponse(out), nil
}
