package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TokenStore finds a token by the SHA-256 of its secret (fsm.Store does).
type TokenStore interface {
	TokenBySHA256(sum []byte) (*statev1.ApiToken, error)
}

// TokenReader reads a token by the SHA-256 of its secret without copying it (fsm.Store
// does): it calls f with the token, which f must not change or keep, and reports whether
// there is one.
type TokenReader interface {
	ReadTokenBySHA256(sum []byte, f func(*statev1.ApiToken)) bool
}

// UseInterval is how stale a token's recorded last use may get before a use is reported.
const UseInterval = time.Minute

// NoTokenHint ends the message of a call that carried no token.
const NoTokenHint = "run `v9 login` or set V9_TOKEN"

// Authorizer checks every call against Procedures.
type Authorizer struct {
	Tokens TokenReader
	// CatchUp, when set, brings the local replica up to date with the leader; it is tried
	// once before a token is declared unknown (a token created a moment ago on another node).
	CatchUp func(ctx context.Context) error
	// Insecure means nodes talk without TLS (--insecure-no-tls): node procedures are then
	// open to whoever reaches the port. Never in production.
	Insecure bool
	// Now is the clock for expiry; nil means time.Now.
	Now func() time.Time
	// Users, when it signs users in with GitHub, is asked at every request whether the
	// GitHub user a token or session belongs to is still let in, and with which role: a
	// login taken off the lists loses its sessions and tokens at once, not when they expire.
	Users *GitHubConfig
	// Changes, when set, tells when the tokens change: a stream a token opened is checked
	// again then, and ends (Unauthenticated, PermissionDenied) once its token no longer
	// passes. Without it a stream ends only when its token expires.
	Changes TokenChanges

	mu   sync.Mutex
	used map[string]time.Time
}

func (a *Authorizer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Authorize decides whether a call of procedure with the given request headers may
// proceed — a Bearer token, else a console session cookie, else a node certificate — and
// returns the context it runs with (its Principal set).
func (a *Authorizer) Authorize(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	need, ok := Procedures[procedure]
	if !ok {
		return ctx, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s is not in the access table: refused", procedure))
	}
	if need.Open {
		// Whatever token came along is not passed on: an open procedure's writes (the
		// bootstrap, a GitHub sign-in) are the node's own, and a stale token must not
		// spoil them.
		return ctx, nil
	}
	secret := requestSecret(h)
	if secret != "" {
		// A node acting on the caller's behalf passes the same secret on, as a Bearer
		// token (a session is looked up like any token).
		ctx = withCredentials(ctx, "Bearer "+secret)
	}
	peer := PeerNode(ctx)
	if need.Node {
		if proof := h.Get(GitHubProofHeader); proof != "" {
			ctx = withGitHubProof(ctx, proof)
		}
		if peer == "" && !a.Insecure {
			return ctx, connect.NewError(connect.CodePermissionDenied,
				fmt.Errorf("%s is for the nodes of the cluster only: it needs a node certificate of the cluster CA", procedure))
		}
		return WithPrincipal(ctx, &Principal{Kind: KindNode, ID: peer, Role: RoleAdmin}), nil
	}
	if secret == "" {
		if peer != "" {
			return WithPrincipal(ctx, &Principal{Kind: KindNode, ID: peer, Role: RoleAdmin}), nil
		}
		return ctx, connect.NewError(connect.CodeUnauthenticated,
			fmt.Errorf("no token: %s needs the %s role; %s", procedure, need.Role, NoTokenHint))
	}
	p, err := a.tokenPrincipal(ctx, secret)
	if err != nil {
		return ctx, err
	}
	if p.Role < need.Role {
		return ctx, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("%s needs the %s role; %s has the %s role", procedure, need.Role, p.Describe(), p.Role))
	}
	return WithPrincipal(ctx, p), nil
}

// tokenPrincipal checks a secret against the state: known, not revoked, not expired.
func (a *Authorizer) tokenPrincipal(ctx context.Context, secret string) (*Principal, error) {
	sum := Hash(secret)
	var p *Principal
	var stale bool
	var err error
	read := func(k *statev1.ApiToken) { p, stale, err = a.principalOf(k) }
	found := a.Tokens.ReadTokenBySHA256(sum, read)
	if !found && a.CatchUp != nil {
		if a.CatchUp(ctx) == nil {
			found = a.Tokens.ReadTokenBySHA256(sum, read)
		}
	}
	if !found {
		return nil, connect.NewError(connect.CodeUnauthenticated,
			errors.New("this token or session is not known to the cluster (signed out?): "+NoTokenHint+" with a valid token, or sign in again"))
	}
	if err != nil {
		return nil, err
	}
	// The lists are checked out of the store's read lock: the bindings read the store.
	if p.Kind == KindUser && a.Users.Enabled() {
		allowed, err := a.Users.stillAllowed(p.ID, p.GitHubID)
		if err != nil {
			what := "token " + p.Token
			if p.Session {
				what = "the console session " + p.Token
			}
			// A token too old to name its user's id just needs a new sign-in (the console
			// sends the user to its sign-in page on Unauthenticated); the rest is the lists'.
			code := connect.CodePermissionDenied
			if old := (*OldTokenError)(nil); errors.As(err, &old) {
				code = connect.CodeUnauthenticated
			}
			return nil, connect.NewError(code, fmt.Errorf("%w: %s no longer works", err, what))
		}
		p.Role = min(p.Role, allowed)
	}
	if stale {
		a.mu.Lock()
		if a.used == nil {
			a.used = map[string]time.Time{}
		}
		a.used[p.Token] = a.now()
		a.mu.Unlock()
	}
	return p, nil
}

// principalOf checks a token read from the state (not revoked, not expired, an API role)
// and returns who it makes the caller, and whether its recorded last use is stale. It runs
// under the store's read lock and keeps nothing of k; its messages are built only for a
// refusal.
func (a *Authorizer) principalOf(k *statev1.ApiToken) (*Principal, bool, error) {
	name := func() string {
		if k.Name != "" {
			return k.Id + " (" + k.Name + ")"
		}
		return k.Id
	}
	refused := func() (what, again string) {
		if k.Session {
			return "the console session of " + k.GithubLogin, "sign in again"
		}
		return "token " + name(), NoTokenHint + " with another token"
	}
	if rt := k.GetRevokeTime(); rt != nil {
		what, again := refused()
		return nil, false, connect.NewError(connect.CodeUnauthenticated,
			fmt.Errorf("%s was revoked at %s: %s", what, rt.AsTime().UTC().Format(time.RFC3339), again))
	}
	now := a.now()
	if et := k.GetExpireTime(); et != nil && !now.Before(et.AsTime()) {
		what, again := refused()
		return nil, false, connect.NewError(connect.CodeUnauthenticated,
			fmt.Errorf("%s expired at %s: %s", what, et.AsTime().UTC().Format(time.RFC3339), again))
	}
	if k.Role == JoinRole {
		return nil, false, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("token %s is a join token: it only lets a new node get its certificate (v9 agent --join-token), never calls the API", name()))
	}
	role, err := ParseRole(k.Role)
	if err != nil {
		return nil, false, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("token %s: %w", name(), err))
	}
	lu := k.GetLastUsedTime()
	stale := lu == nil || now.Sub(lu.AsTime()) > UseInterval
	var expires time.Time
	if et := k.GetExpireTime(); et != nil {
		expires = et.AsTime()
	}
	if k.GithubLogin != "" {
		return &Principal{Kind: KindUser, ID: k.GithubLogin, GitHubID: k.GithubUserId, Name: k.Name, Role: role, Token: k.Id, Session: k.Session, Expires: expires}, stale, nil
	}
	return &Principal{Kind: KindToken, ID: k.Id, Name: k.Name, Role: role, Token: k.Id, Expires: expires}, stale, nil
}

// TakeUsed returns the tokens used since the last call whose recorded last use is stale,
// with when, and forgets them.
func (a *Authorizer) TakeUsed() map[string]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.used
	a.used = nil
	return u
}

// Interceptor enforces Authorize on every unary and streaming call a handler serves.
func (a *Authorizer) Interceptor() connect.Interceptor { return interceptor{a} }

type interceptor struct{ a *Authorizer }

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.a.Authorize(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		procedure := conn.Spec().Procedure
		ctx, err := i.a.Authorize(ctx, procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		// A stream lasts: its token is checked again while it does (streamGuard).
		ctx, g, stop := i.a.guardStream(ctx, procedure, requestSecret(conn.RequestHeader()), FromContext(ctx))
		defer stop()
		if g == nil {
			return next(ctx, conn)
		}
		err = next(ctx, guardedConn{StreamingHandlerConn: conn, ctx: ctx, g: g})
		if r := g.refusal(); r != nil {
			return r
		}
		return err
	}
}

// RequireHTTP guards a plain HTTP handler (metrics) with a role, as the interceptor guards
// procedures: a token of that role, or a node certificate.
func (a *Authorizer) RequireHTTP(role Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if PeerNode(ctx) == "" {
			secret := requestSecret(r.Header)
			if secret == "" {
				http.Error(w, "no token: "+NoTokenHint, http.StatusUnauthorized)
				return
			}
			// A browser sends the session cookie with a form another site posts here; only
			// a reading request may come with the cookie alone.
			if safe := r.Method == http.MethodGet || r.Method == http.MethodHead; !safe && BearerSecret(r.Header.Get("Authorization")) == "" {
				http.Error(w, r.Method+" "+r.URL.Path+" needs the token in an Authorization: Bearer header; a session cookie alone is not enough (another site could make a browser send it)", http.StatusUnauthorized)
				return
			}
			p, err := a.tokenPrincipal(ctx, secret)
			if err != nil {
				http.Error(w, connect.CodeOf(err).String()+": "+errMessage(err), http.StatusUnauthorized)
				return
			}
			if p.Role < role {
				http.Error(w, fmt.Sprintf("needs the %s role; %s has the %s role", role, p.Describe(), p.Role), http.StatusForbidden)
				return
			}
			ctx = WithPrincipal(ctx, p)
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func errMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}

// Forward is a client interceptor for calls a node makes on a caller's behalf (fan-out,
// forwarding to the leader): it passes the caller's Authorization header on, so that the
// other node checks the same identity and records the same actor.
func Forward() connect.Interceptor { return forward{} }

type forward struct{}

func (forward) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if c := credentials(ctx); c != "" && req.Spec().IsClient && req.Header().Get("Authorization") == "" {
			req.Header().Set("Authorization", c)
		}
		if p := githubProof(ctx); p != "" && req.Spec().IsClient {
			req.Header().Set(GitHubProofHeader, p)
		}
		return next(ctx, req)
	}
}

func (forward) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if c := credentials(ctx); c != "" && conn.RequestHeader().Get("Authorization") == "" {
			conn.RequestHeader().Set("Authorization", c)
		}
		return conn
	}
}

func (forward) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// Bearer is a client interceptor that sends a fixed token (the CLI, tests).
func Bearer(secret string) connect.Interceptor { return bearer("Bearer " + secret) }

type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			req.Header().Set("Authorization", string(b))
		}
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
