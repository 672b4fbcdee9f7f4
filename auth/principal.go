package auth

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
)

// Kind is what a principal is.
type Kind string

const (
	// KindToken is a caller holding an API token.
	KindToken Kind = "token"
	// KindNode is another node of the cluster, known by its certificate.
	KindNode Kind = "node"
	// KindUser is a person signed in with GitHub (a console session, or a token `v9 login`
	// made through GitHub).
	KindUser Kind = "user"
)

// Principal is who a request acts as: a token, a user signed in with GitHub, or a node.
type Principal struct {
	Kind Kind
	ID   string // token accessor id, node id or user login
	// GitHubID is a user's GitHub numeric id (0 on a token made before v9 recorded ids).
	GitHubID int64
	Name     string // token name
	Role     Role
	// Token is the accessor id of the token or session the request came with ("" for a
	// node); Session says it is a console session.
	Token   string
	Session bool
	// Expires is when the token or session the request came with expires (zero: never).
	Expires time.Time
}

// Describe names the principal in an error message.
func (p *Principal) Describe() string {
	switch p.Kind {
	case KindUser:
		return "GitHub user " + p.ID
	case KindNode:
		return "node " + p.ID
	}
	return "token " + p.ID
}

// Actor names the principal in the audit log and on what it writes; nodes writing on
// their own account are not actors ("").
func (p *Principal) Actor() string {
	if p == nil {
		return ""
	}
	switch p.Kind {
	case KindToken:
		if p.Name != "" {
			return fmt.Sprintf("token:%s (%s)", p.ID, p.Name)
		}
		return "token:" + p.ID
	case KindUser:
		return UserActor(p.ID, p.GitHubID)
	}
	return ""
}

// UserActor names a GitHub user as an actor: "user:alice (id 583231)". With the id, a
// later holder of a freed login is another actor (the creator of a token tells).
func UserActor(login string, id int64) string {
	if id == 0 {
		return "user:" + login
	}
	return fmt.Sprintf("user:%s (id %d)", login, id)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of the request ctx belongs to, nil if none.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// ActorFrom is FromContext(ctx).Actor().
func ActorFrom(ctx context.Context) string { return FromContext(ctx).Actor() }

type credentialsKey struct{}

// withCredentials keeps the caller's Authorization header so that a node acting on the
// caller's behalf (fan-out, forwarding to the leader) passes it on.
func withCredentials(ctx context.Context, authorization string) context.Context {
	return context.WithValue(ctx, credentialsKey{}, authorization)
}

// AsCaller returns ctx carrying a token secret as the interceptor keeps a caller's: calls a
// node makes from it (a write forwarded to the leader) act for that token. For work a node
// does for a user outside an API call, and tests.
func AsCaller(ctx context.Context, secret string) context.Context {
	return withCredentials(ctx, "Bearer "+secret)
}

func credentials(ctx context.Context) string {
	s, _ := ctx.Value(credentialsKey{}).(string)
	return s
}

type peerNodeKey struct{}

// WithPeerNode records that the connection of a request presented a verified node
// certificate of the cluster CA for node id.
func WithPeerNode(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, peerNodeKey{}, id)
}

// PeerNode returns the node id of a verified peer certificate, "" if none.
func PeerNode(ctx context.Context) string {
	s, _ := ctx.Value(peerNodeKey{}).(string)
	return s
}

// CallerIs refuses a request that names node id as its subject when the caller's verified
// node certificate names another node: a node speaks only for itself. A request without a
// peer certificate (a local call, or an insecure dev cluster) is not checked here.
func CallerIs(ctx context.Context, id, what string) error {
	peer := PeerNode(ctx)
	if peer == "" || peer == id {
		return nil
	}
	return connect.NewError(connect.CodePermissionDenied,
		fmt.Errorf("%s for node %q refused: the caller's certificate names node %q", what, id, peer))
}

// GitHubProofHeader carries, from a follower to the leader, the GitHub access token a
// sign-in was verified with (over mutual TLS only; never logged).
const GitHubProofHeader = "V9-Github-Proof"

type githubProofKey struct{}

func withGitHubProof(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return context.WithValue(ctx, githubProofKey{}, token)
}

func githubProof(ctx context.Context) string {
	s, _ := ctx.Value(githubProofKey{}).(string)
	return s
}
