package ghub

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/loglimit"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// State is what the package reads of the replicated state: this node's replica, possibly
// stale. *fsm.Store satisfies it.
type State interface {
	Component(name string) (*statev1.Component, error)
	ComponentByID(id string) (*statev1.Component, error)
	Deployment(id string) (*statev1.Deployment, error)
	Deployments(componentID string) []*statev1.Deployment
	Placements(nodeID string) []*statev1.Placement
	GithubLink(componentID string) (*statev1.GithubLink, error)
	GithubLinks() []*statev1.GithubLink
	View(f func(fsm.View))
	// TableIndex and WatchTables are the blocking query over the state's tables.
	TableIndex(tables ...fsm.Table) uint64
	WatchTables(min uint64, tables ...fsm.Table) (ch <-chan struct{}, stop func())
	WaitForIndex(ctx context.Context, min uint64) (uint64, error)
}

// Cluster is how the package changes the state.
type Cluster interface {
	// Apply commits a command through the Raft leader (forwarded from a follower) and
	// returns its index, or the error fsm's Apply gave.
	Apply(ctx context.Context, cmd *statev1.Command) (uint64, error)
}

// Artifacts stores what a build produces.
type Artifacts interface {
	// Put stores a bundle and returns its digest ("sha256:...").
	Put(r io.Reader) (digest string, err error)
	// Pin keeps an artifact from garbage collection until the returned func is called.
	Pin(digest string) (unpin func())
}

// LogSink receives the system lines a component's log shows ("deployment ... activated").
type LogSink interface {
	Append(component, instance, stream, text string)
}

// Options is everything a Service needs; the node fills it.
type Options struct {
	NodeID  string // this node's id, recorded as the artifact origin of its builds
	DataDir string // builds run under DataDir/builds
	GitHub  Config
	Build   deploy.BuildOptions
	// MaxArtifactBytes bounds an extracted repository when Build.Limits.MaxBytes is zero.
	MaxArtifactBytes int64
	// APIAddr returns this node's advertised API address; the webhook URL defaults to
	// http://APIAddr()/github/webhook.
	APIAddr func() string
	// PublicURL is the base URL users reach the console at (the agent's --public-url); when
	// set, commit statuses link to the component's console page. Empty: no link.
	PublicURL string

	State     State
	Cluster   Cluster
	Artifacts Artifacts
	Logs      LogSink
	Logger    *slog.Logger
	// Sealer seals webhook secrets with the cluster keyring before they enter the state, and
	// opens them to check deliveries; nil stores them plain.
	Sealer Sealer
	// WebhookLogs limits the log lines of refused webhook deliveries (anyone can send
	// those); nil: one line per kind every loglimit.DefaultEvery, not counted.
	WebhookLogs *loglimit.Limiter
}

// Sealer seals and opens secrets with the cluster keyring (the node implements it).
type Sealer interface {
	SealSecret(ctx context.Context, componentID, name string, value []byte) (keyID string, nonce, ciphertext []byte, err error)
	OpenSecret(ctx context.Context, s *statev1.Secret) ([]byte, error)
}

// webhookSecretName is the name a link's webhook secret is sealed under (not a valid
// environment variable name, so no component secret shares its additional data).
const webhookSecretName = "github-webhook"

// openLinks returns the links with their webhook secrets opened. A secret that does not
// open (tampered, or its key lost) leaves the link without one: no delivery verifies
// against it, and the reason is logged.
func (s *Service) openLinks(ctx context.Context, links []*statev1.GithubLink) []*statev1.GithubLink {
	for _, l := range links {
		if l.SecretKeyId == "" {
			continue
		}
		var v []byte
		err := errors.New("this node has no keyring")
		if s.o.Sealer != nil {
			v, err = s.o.Sealer.OpenSecret(ctx, &statev1.Secret{
				ComponentId: l.ComponentId, Name: webhookSecretName, KeyId: l.SecretKeyId, Nonce: l.SecretNonce, Ciphertext: l.Secret,
			})
		}
		if err != nil {
			if ok, n := s.webhookLogs.Allow("unreadable secret"); ok {
				s.log.Warn("webhook secret of a link is unreadable", "repo", l.Repo, "err", err, "suppressed", n)
			}
			v = nil
		}
		l.Secret, l.SecretKeyId, l.SecretNonce = v, "", nil
	}
	return links
}

// Service is one node's GitHub side: linking, webhook intake, builds, polling and commit
// statuses. Its loops (BuildLoop, PollLoop, StatusLoop) are leader controllers: the node's
// leadership owner runs each for a term of leadership, with a ctx that ends with the term;
// CreateLinked runs on the leader (the node forwards it there).
type Service struct {
	o        Options
	state    State
	cluster  Cluster
	log      *slog.Logger
	builds   builder
	statuses chan statusPost
	reports  reported // deployments whose final status this node posted
	// webhookLogs limits the log lines of refused webhook deliveries.
	webhookLogs *loglimit.Limiter
}

// New returns a Service; nothing runs until its loops are started.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WebhookLogs == nil {
		o.WebhookLogs = loglimit.New(loglimit.DefaultEvery, nil, nil)
	}
	return &Service{
		o: o, state: o.State, cluster: o.Cluster, log: o.Logger,
		builds:      builder{wake: make(chan struct{}, 1)},
		statuses:    make(chan statusPost, 1024),
		webhookLogs: o.WebhookLogs,
	}
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
