package node

import (
	"context"
	"io"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/deployments"
	"github.com/velocity9/v9/ghub"
	"github.com/velocity9/v9/internal/loglimit"
	"github.com/velocity9/v9/leader"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/github/v1/githubv1connect"
)

// openGitHub wires the GitHub side (package ghub) to this node (its replica, its write
// path, its artifact store and its component logs) and registers its loops as leader
// controllers.
func (n *Node) openGitHub() {
	n.gh = ghub.New(ghub.Options{
		NodeID: n.cfg.ID, DataDir: n.cfg.DataDir, GitHub: n.cfg.GitHub, Build: n.cfg.Build,
		MaxArtifactBytes: deployments.MaxUploadBytes, APIAddr: n.APIAddr, PublicURL: n.cfg.SignIn.PublicURL,
		State: n.fsm.Store, Cluster: n, Artifacts: ghArtifacts{n}, Logs: n.logs, Logger: n.log,
		Sealer: n, WebhookLogs: n.logDrops.Limiter("webhook", loglimit.DefaultEvery),
	})
	n.owner.Register(
		leader.ControllerFunc("builds", n.gh.BuildLoop),
		leader.ControllerFunc("poll", n.gh.PollLoop),
		leader.ControllerFunc("statuses", n.gh.StatusLoop),
	)
}

// UserGitHub serves GitHubService: the caller's repositories, read with the GitHub grant
// their console session keeps (sealed with the cluster keyring).
func (n *Node) UserGitHub() githubv1connect.GitHubServiceHandler {
	return &ghub.Repos{APIURL: n.cfg.GitHub.APIURL, HTTPClient: n.cfg.SignIn.HTTPClient,
		Grant: func(ctx context.Context) (string, error) { return auth.CallerGitHubToken(ctx, n.fsm.Store, n) }}
}

// ghArtifacts lends ghub the artifact store and the pins that keep a fresh build from
// garbage collection.
type ghArtifacts struct{ n *Node }

func (a ghArtifacts) Put(r io.Reader) (string, error) { return a.n.artifacts.Put(r) }
func (a ghArtifacts) Pin(digest string) func()        { return a.n.dp.Pin(digest) }

// CreateLinked creates a component built from a GitHub repository, on the leader: a
// follower forwards the call.
func (n *Node) CreateLinked(ctx context.Context, req *componentv1.CreateRequest) (*componentv1.CreateResponse, error) {
	var resp *componentv1.CreateResponse
	_, err := n.OnLeader(ctx, func() (uint64, error) {
		var err error
		resp, err = n.gh.CreateLinked(ctx, req)
		return 0, err
	}, func(addr string) (uint64, error) {
		r, err := n.peers.get(addr).component.Create(ctx, connect.NewRequest(req))
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

// DeleteComponent deletes a component, and the webhook of its repository link.
func (n *Node) DeleteComponent(ctx context.Context, name string) (uint64, error) {
	return n.gh.DeleteComponent(ctx, name)
}
