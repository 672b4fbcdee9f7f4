package auth

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// A console session is a token of the replicated state marked session, issued to a GitHub
// user at sign-in: only the SHA-256 of its secret is stored, it expires, sign-out deletes it,
// and any node accepts it. The browser holds the secret in a cookie.
const (
	// SessionCookie is the session cookie over TLS: Secure, HttpOnly, SameSite=Lax, Path=/,
	// no Domain (what the __Host- prefix makes browsers enforce).
	SessionCookie = "__Host-v9_session"
	// PlainSessionCookie is its name on plain HTTP: browsers refuse a __Host- cookie that
	// is not Secure, and a Secure cookie is never sent over plain HTTP.
	PlainSessionCookie = "v9_session"
)

// Writer writes sign-ins into the replicated state: the node's Raft Apply (forwarded to the
// leader from any node) and a wait for the local replica to catch up.
type Writer interface {
	Apply(ctx context.Context, cmd *statev1.Command) (uint64, error)
	WaitIndex(ctx context.Context, idx uint64) error
}

// IssueUserToken records a token for a signed-in GitHub user — binding the login to the
// user's id when a list names the login without one and it is bound to nobody yet (the
// state machine refuses the write if another id won the race) — — a console session when
// session is set — valid for ttl, and returns its secret. The local replica knows it when
// this returns; other nodes find it through Authorizer.CatchUp.
//
// keep, when not nil, may add to the record before it is written (the sealed GitHub grant).
func IssueUserToken(ctx context.Context, w Writer, id *Identity, name string, ttl time.Duration, session bool, keep func(*statev1.ApiToken)) (string, *statev1.ApiToken, error) {
	secret := NewSecret()
	k := &statev1.ApiToken{
		Id: NewAccessorID(), Name: name, Role: id.Role.String(), Sha256: Hash(secret),
		Creator: UserActor(id.Login, id.ID), GithubLogin: id.Login, GithubUserId: id.ID, Session: session,
		ExpireTime: timestamppb.New(time.Now().Add(ttl)),
	}
	if keep != nil {
		keep(k)
	}
	cmd := &statev1.Command{Actor: UserActor(id.Login, id.ID),
		Op: &statev1.Command_CreateApiToken{CreateApiToken: &statev1.CreateApiToken{Token: k, BindGithubLogin: id.bind}}}
	idx, err := w.Apply(withGitHubProof(ctx, id.token), cmd)
	if err != nil {
		return "", nil, fmt.Errorf("record the sign-in: %w", err)
	}
	if err := w.WaitIndex(ctx, idx); err != nil {
		return "", nil, err
	}
	return secret, k, nil
}

// sessionSecret is the session secret a request's cookies carry, "" if none.
func sessionSecret(h http.Header) string {
	if h.Get("Cookie") == "" {
		return ""
	}
	r := &http.Request{Header: h}
	for _, name := range []string{SessionCookie, PlainSessionCookie} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// requestSecret is the secret a request authenticates with: a Bearer token, else a session
// cookie.
func requestSecret(h http.Header) string {
	if s := BearerSecret(h.Get("Authorization")); s != "" {
		return s
	}
	return sessionSecret(h)
}

// sessionCookie makes the session cookie (or, value "", one that clears it).
func sessionCookie(secure bool, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: PlainSessionCookie, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: secure}
	if secure {
		c.Name = SessionCookie
	}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	return c
}
