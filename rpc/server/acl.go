package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/fsm"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// ACLBackend is what ACLService needs from a node: writes through Raft and reads of the
// local replica.
type ACLBackend interface {
	Apply(ctx context.Context, cmd *statev1.Command) (uint64, error)
	ACLBootstrapped() bool
	Tokens() []*statev1.ApiToken
	Token(id string) (*statev1.ApiToken, error)
	Audit(limit int) []*statev1.AuditEntry
	// WaitIndex waits until the local replica has applied idx.
	WaitIndex(ctx context.Context, idx uint64) error
	// GitHubSignIn is how the cluster signs users in with GitHub (nil or no client id: it
	// does not).
	GitHubSignIn() *auth.GitHubConfig
	// ClusterCA is the cluster CA certificate (PEM), which join tokens are bound to; an
	// error when the cluster runs without TLS.
	ClusterCA() ([]byte, error)
	// SealSecret seals a GitHub sign-in's grant with the cluster keyring (auth.GrantSealer).
	auth.GrantSealer
}

// ACL implements ACLService.
type ACL struct {
	B ACLBackend
}

var _ aclv1connect.ACLServiceHandler = (*ACL)(nil)

// MaxTokenNameLen bounds a token's name.
const MaxTokenNameLen = 128

func (s *ACL) Bootstrap(ctx context.Context, req *connect.Request[aclv1.BootstrapRequest]) (*connect.Response[aclv1.BootstrapResponse], error) {
	if s.B.ACLBootstrapped() {
		return nil, errBootstrapped
	}
	secret := req.Msg.Secret
	if secret == "" {
		secret = auth.NewSecret()
	} else if err := auth.CheckChosenSecret(secret); err != nil {
		return nil, invalidArg(err)
	}
	k := &statev1.ApiToken{Id: auth.NewAccessorID(), Name: "bootstrap", Role: auth.RoleAdmin.String(), Sha256: auth.Hash(secret)}
	_, err := s.applyHere(ctx, &statev1.Command{Op: &statev1.Command_AclBootstrap{AclBootstrap: &statev1.AclBootstrap{Token: k}}})
	if errors.Is(err, fsm.ErrAlreadyExists) || connect.CodeOf(err) == connect.CodeAlreadyExists {
		return nil, errBootstrapped // raced another bootstrap, or this replica was behind
	}
	if err != nil {
		return nil, toConnect(err)
	}
	k, err = s.B.Token(k.Id) // read back from this node's state, which has it now
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&aclv1.BootstrapResponse{Token: publicToken(k), Secret: secret}), nil
}

// applyHere commits cmd and waits until this node (perhaps a follower) has applied it, so
// that the change holds on this node from the answer on. Apply's error comes back as it is.
func (s *ACL) applyHere(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	idx, err := s.B.Apply(ctx, cmd)
	if err != nil {
		return 0, err
	}
	return idx, s.B.WaitIndex(ctx, idx)
}

var errBootstrapped = connect.NewError(connect.CodeFailedPrecondition,
	errors.New("this cluster's ACL is already bootstrapped: its first token exists; ask an admin for a token (v9 token create)"))

func (s *ACL) WhoAmI(ctx context.Context, _ *connect.Request[aclv1.WhoAmIRequest]) (*connect.Response[aclv1.WhoAmIResponse], error) {
	p := auth.FromContext(ctx)
	if p == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no identity"))
	}
	resp := &aclv1.WhoAmIResponse{Kind: string(p.Kind), Id: p.ID, Name: p.Name, Role: p.Role.String()}
	if p.Token != "" {
		if k, err := s.B.Token(p.Token); err == nil {
			resp.Token = publicToken(k)
		}
	}
	return connect.NewResponse(resp), nil
}

func (s *ACL) CreateToken(ctx context.Context, req *connect.Request[aclv1.CreateTokenRequest]) (*connect.Response[aclv1.CreateTokenResponse], error) {
	p := auth.FromContext(ctx)
	m := req.Msg
	if m.Role == auth.JoinRole {
		return s.createJoinToken(ctx, p, m)
	}
	role, err := auth.ParseRole(m.Role)
	if err != nil {
		return nil, invalidArg(err)
	}
	if p == nil || p.Role < role {
		return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("a token with the %s role needs a caller with that role; you have %s", role, callerRole(p)))
	}
	name, err := tokenName(m.Name, "")
	if err != nil {
		return nil, invalidArg(err)
	}
	secret := auth.NewSecret()
	k := &statev1.ApiToken{Id: auth.NewAccessorID(), Name: name, Role: role.String(), Sha256: auth.Hash(secret), Creator: p.Actor()}
	if p.Kind == auth.KindUser {
		// A GitHub user's token is the user's: it is checked against the lists on every
		// request, as the user's sessions are, and loses its access with the user's.
		k.GithubLogin, k.GithubUserId = p.ID, p.GitHubID
	}
	var expires time.Time
	if m.TtlSeconds > 0 {
		if m.TtlSeconds > uint64(100*365*24*time.Hour/time.Second) {
			return nil, invalidArg(errors.New("ttl is too long"))
		}
		expires = time.Now().Add(time.Duration(m.TtlSeconds) * time.Second)
	}
	// A token never outlives the token or console session that made it: a short session
	// must not mint a credential that lives forever.
	if !p.Expires.IsZero() && (expires.IsZero() || expires.After(p.Expires)) {
		expires = p.Expires
	}
	if !expires.IsZero() {
		k.ExpireTime = timestamppb.New(expires)
	}
	return s.recordToken(ctx, k, secret)
}

// createJoinToken makes a one-time join token (admin only), bound to the cluster's CA.
func (s *ACL) createJoinToken(ctx context.Context, p *auth.Principal, m *aclv1.CreateTokenRequest) (*connect.Response[aclv1.CreateTokenResponse], error) {
	if p == nil || p.Role < auth.RoleAdmin {
		return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("a join token needs the admin role; you have %s", callerRole(p)))
	}
	ca, err := s.B.ClusterCA()
	if err != nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("join tokens need a cluster with TLS: %w", err))
	}
	der, err := auth.CADER(ca)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	ttl := auth.DefaultJoinTokenTTL
	if m.TtlSeconds > 0 {
		// Seconds are compared first: a huge count overflows a time.Duration.
		if m.TtlSeconds > uint64(auth.MaxJoinTokenTTL/time.Second) {
			return nil, invalidArg(fmt.Errorf("a join token lives at most %s", auth.MaxJoinTokenTTL))
		}
		ttl = time.Duration(m.TtlSeconds) * time.Second
	}
	name, err := tokenName(m.Name, "join")
	if err != nil {
		return nil, invalidArg(err)
	}
	secret := auth.NewJoinSecret(der)
	k := &statev1.ApiToken{Id: auth.NewAccessorID(), Name: name, Role: auth.JoinRole, Sha256: auth.Hash(secret), Creator: p.Actor(),
		ExpireTime: timestamppb.New(time.Now().Add(ttl))}
	return s.recordToken(ctx, k, secret)
}

// tokenName checks a new token's name (dflt when it has none): 1 to MaxTokenNameLen bytes
// of printable text. Any token holder names the tokens it makes and an admin's token list
// and audit print them: a control character could forge rows or drive the admin's terminal.
func tokenName(raw, dflt string) (string, error) {
	name := strings.TrimSpace(raw)
	if name == "" {
		name = dflt
	}
	if name == "" || len(name) > MaxTokenNameLen {
		return "", fmt.Errorf("a token needs a name of 1 to %d characters", MaxTokenNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", fmt.Errorf("a token's name is printable text: %q has the control or non-printing character %U", name, r)
		}
	}
	return name, nil
}

// recordToken writes a new token and answers with it once this node knows it.
func (s *ACL) recordToken(ctx context.Context, k *statev1.ApiToken, secret string) (*connect.Response[aclv1.CreateTokenResponse], error) {
	// The token works on this node from the answer on.
	if _, err := s.applyHere(ctx, &statev1.Command{Op: &statev1.Command_CreateApiToken{CreateApiToken: &statev1.CreateApiToken{Token: k}}}); err != nil {
		return nil, toConnect(err)
	}
	out := publicToken(k)
	if got, err := s.B.Token(k.Id); err == nil {
		out = publicToken(got)
	}
	return connect.NewResponse(&aclv1.CreateTokenResponse{Token: out, Secret: secret}), nil
}

func callerRole(p *auth.Principal) string {
	if p == nil {
		return "none"
	}
	return p.Role.String()
}

// mayManage reports whether p may see and revoke token k: an admin any, others their own
// and those they created.
func mayManage(p *auth.Principal, k *statev1.ApiToken) bool {
	if p == nil {
		return false
	}
	if p.Role >= auth.RoleAdmin {
		return true
	}
	switch p.Kind {
	case auth.KindToken:
		return k.Id == p.ID || (k.Creator != "" && k.Creator == p.Actor())
	case auth.KindUser:
		return auth.SameGitHubUser(p, k) || (k.Creator != "" && k.Creator == p.Actor())
	}
	return false
}

func (s *ACL) ListTokens(ctx context.Context, _ *connect.Request[aclv1.ListTokensRequest]) (*connect.Response[aclv1.ListTokensResponse], error) {
	p := auth.FromContext(ctx)
	resp := &aclv1.ListTokensResponse{}
	for _, k := range s.B.Tokens() {
		if mayManage(p, k) {
			resp.Tokens = append(resp.Tokens, publicToken(k))
		}
	}
	return connect.NewResponse(resp), nil
}

func (s *ACL) RevokeToken(ctx context.Context, req *connect.Request[aclv1.RevokeTokenRequest]) (*connect.Response[aclv1.RevokeTokenResponse], error) {
	id := req.Msg.AccessorId
	if id == "" {
		return nil, invalidArg(errors.New("revoke needs an accessor id"))
	}
	k, err := s.B.Token(id)
	if err != nil {
		return nil, toConnect(err)
	}
	if !mayManage(auth.FromContext(ctx), k) {
		return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("token %s is not yours: revoking others' tokens needs the admin role", id))
	}
	// This node refuses the token from the answer on (others as soon as they apply it).
	idx, err := s.applyHere(ctx, &statev1.Command{Op: &statev1.Command_RevokeApiToken{RevokeApiToken: &statev1.RevokeApiToken{Id: id}}})
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&aclv1.RevokeTokenResponse{Index: idx}), nil
}

func (s *ACL) Audit(_ context.Context, req *connect.Request[aclv1.AuditRequest]) (*connect.Response[aclv1.AuditResponse], error) {
	return connect.NewResponse(&aclv1.AuditResponse{Entries: s.B.Audit(int(req.Msg.Limit))}), nil
}

// publicToken is a token without its hash.
func publicToken(k *statev1.ApiToken) *aclv1.Token {
	return &aclv1.Token{
		AccessorId: k.Id, Name: k.Name, Role: k.Role, CreateTime: k.CreateTime, ExpireTime: k.ExpireTime,
		Creator: k.Creator, LastUsedTime: k.LastUsedTime, RevokeTime: k.RevokeTime,
		GithubLogin: k.GithubLogin, GithubUserId: k.GithubUserId, Session: k.Session,
	}
}

func (s *ACL) AuthMethods(context.Context, *connect.Request[aclv1.AuthMethodsRequest]) (*connect.Response[aclv1.AuthMethodsResponse], error) {
	resp := &aclv1.AuthMethodsResponse{}
	if gh := s.B.GitHubSignIn(); gh.Enabled() {
		resp.Github = &aclv1.GitHubAuth{ClientId: gh.ClientID, WebUrl: gh.WebBase(), LoginPath: auth.LoginPath, Scopes: auth.GitHubScopes}
	}
	return connect.NewResponse(resp), nil
}

func (s *ACL) GitHubLogin(ctx context.Context, req *connect.Request[aclv1.GitHubLoginRequest]) (*connect.Response[aclv1.GitHubLoginResponse], error) {
	gh := s.B.GitHubSignIn()
	if !gh.Enabled() {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("this cluster does not sign users in with GitHub (no --github-client-id): sign in with `v9 login --token SECRET`"))
	}
	if req.Msg.GithubToken == "" {
		return nil, invalidArg(errors.New("GitHub sign-in needs a GitHub user access token"))
	}
	name := strings.TrimSpace(req.Msg.Name)
	if name == "" {
		name = "v9 login"
	}
	if len(name) > MaxTokenNameLen {
		return nil, invalidArg(fmt.Errorf("a token needs a name of 1 to %d characters", MaxTokenNameLen))
	}
	id, err := gh.Identify(ctx, req.Msg.GithubToken)
	var refused *auth.RefusedError
	var foreign *auth.ForeignTokenError
	var bound *auth.LoginBoundError
	if errors.As(err, &refused) || errors.As(err, &foreign) || errors.As(err, &bound) {
		return nil, connect.NewError(connect.CodePermissionDenied, err)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("GitHub did not accept the token: %w", err))
	}
	// The GitHub token is kept, sealed, with the v9 token (as the console's sign-in keeps it
	// with the session), so that the Start flow can list the user's repositories.
	var sealErr error
	keep := auth.KeepGitHubGrant(ctx, s.B, req.Msg.GithubToken, func(err error) { sealErr = err })
	secret, k, err := auth.IssueUserToken(ctx, s.B, id, name, gh.UserTokenTTL(), false, keep)
	if err != nil {
		return nil, toConnect(err)
	}
	out := publicToken(k)
	if got, err := s.B.Token(k.Id); err == nil {
		out = publicToken(got)
	}
	resp := &aclv1.GitHubLoginResponse{Token: out, Secret: secret, Login: id.Login}
	if sealErr != nil {
		resp.Warning = "signed in, but the cluster could not keep your GitHub grant (" + sealErr.Error() + "): listing your repositories to start a component will ask you to sign in again"
	}
	return connect.NewResponse(resp), nil
}
