package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/velocity9/v9/internal/loglimit"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// The console's sign-in with GitHub's OAuth web flow, served by every node:
//
//	GET  /auth/github/login?next=/path  sets a short-lived cookie holding a fresh state, the
//	                                    PKCE verifier and where to return, and redirects to
//	                                    GitHub's authorize page (state + S256 challenge)
//	GET  /auth/github/callback          checks the state against that cookie (and clears it,
//	                                    so a replay finds none), exchanges the code with the
//	                                    verifier, reads the user from GitHub, checks the
//	                                    allowed users and organizations, records a session
//	                                    through Raft and sets the session cookie
//	POST /auth/signout                  deletes the session and clears the cookie
//
// The flow keeps nothing in memory, so the callback may reach another node than the login.
// The user's GitHub token is kept with the session, sealed with the cluster keyring
// (Grants), for the console's Start page to list the user's repositories; no read API
// returns it, and it goes with the session at sign-out.

// StateCookie is the cookie that binds an OAuth state to the browser that started the
// flow (PlainStateCookie on plain HTTP, like the session cookie).
const (
	StateCookie      = "__Host-v9_oauth"
	PlainStateCookie = "v9_oauth"
	// StateTTL is how long a started sign-in may take at GitHub.
	StateTTL = 10 * time.Minute
)

// WebSignIn serves the console's GitHub sign-in.
type WebSignIn struct {
	GitHub *GitHubConfig
	W      Writer
	Tokens SessionStore
	Log    *slog.Logger
	// Grants seals the user's GitHub token into the session; nil keeps none.
	Grants GrantSealer
	// Logs limits the lines about refused callbacks (anyone can send one); nil: every one
	// is logged.
	Logs *loglimit.Limiter
}

// GrantSealer seals a user's GitHub OAuth token with the cluster keyring before it enters
// the replicated state (the node implements it).
type GrantSealer interface {
	SealSecret(ctx context.Context, owner, name string, value []byte) (keyID string, nonce, ciphertext []byte, err error)
}

// GitHubGrantName names the sealed GitHub token of a session; GrantOwner(id) is its owner,
// together the additional data it is sealed with.
const GitHubGrantName = "github-oauth"

// GrantOwner is the owner a session's GitHub token is sealed for.
func GrantOwner(tokenID string) string { return "token:" + tokenID }

// SessionStore reads tokens and sessions of the local replica (fsm.Store).
type SessionStore interface {
	TokenStore
	Tokens() []*statev1.ApiToken
}

// Register mounts the sign-in paths on mux.
func (s *WebSignIn) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+LoginPath, s.login)
	mux.HandleFunc("GET "+CallbackPath, s.callback)
	mux.HandleFunc("POST "+SignOutPath, s.signOut)
}

func (s *WebSignIn) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// secure reports whether cookies must be Secure: the request came over TLS, or the public
// URL users reach is https (TLS ends at a proxy in front).
func (s *WebSignIn) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(s.GitHub.PublicURL, "https://")
}

func (s *WebSignIn) callbackURL(r *http.Request) string {
	if s.GitHub.PublicURL != "" {
		return strings.TrimRight(s.GitHub.PublicURL, "/") + CallbackPath
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + CallbackPath
}

// SafeNext is where to send the user after sign-in: a path on this origin, "/" otherwise
// (never another host: "//evil", "/\\evil", "https://evil" are refused).
func SafeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") || strings.HasPrefix(next, SignOutPath) || strings.HasPrefix(next, "/auth/") {
		return "/"
	}
	return next
}

func randomState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *WebSignIn) login(w http.ResponseWriter, r *http.Request) {
	if !s.GitHub.Enabled() {
		page(w, http.StatusNotFound, "GitHub sign-in is not configured", "This cluster does not sign users in with GitHub. Sign in with a token instead.")
		return
	}
	state, verifier := randomState(), oauth2.GenerateVerifier()
	next := SafeNext(r.URL.Query().Get("next"))
	secure := s.secure(r)
	c := &http.Cookie{Name: PlainStateCookie, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
		MaxAge: int(StateTTL / time.Second),
		Value:  state + "." + verifier + "." + base64.RawURLEncoding.EncodeToString([]byte(next))}
	if secure {
		c.Name = StateCookie
	}
	http.SetCookie(w, c)
	url := s.GitHub.OAuth2(s.callbackURL(r)).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
	http.Redirect(w, r, url, http.StatusFound)
}

// flowCookie reads the state cookie: state, verifier and next.
func flowCookie(r *http.Request) (state, verifier, next string, ok bool) {
	for _, name := range []string{StateCookie, PlainStateCookie} {
		c, err := r.Cookie(name)
		if err != nil {
			continue
		}
		parts := strings.Split(c.Value, ".")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
			return "", "", "", false
		}
		n, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			return "", "", "", false
		}
		return parts[0], parts[1], SafeNext(string(n)), true
	}
	return "", "", "", false
}

func (s *WebSignIn) callback(w http.ResponseWriter, r *http.Request) {
	if !s.GitHub.Enabled() {
		page(w, http.StatusNotFound, "GitHub sign-in is not configured", "This cluster does not sign users in with GitHub.")
		return
	}
	q := r.URL.Query()
	state, verifier, next, ok := flowCookie(r)
	// The state is good for one try: clear the cookie whatever happens next.
	for _, name := range []string{StateCookie, PlainStateCookie} {
		http.SetCookie(w, &http.Cookie{Name: name, Path: "/", MaxAge: -1, HttpOnly: true, Secure: name == StateCookie, SameSite: http.SameSiteLaxMode})
	}
	if e := q.Get("error"); e != "" {
		page(w, http.StatusBadRequest, "GitHub did not sign you in", "GitHub answered "+e+": "+q.Get("error_description")+". Start again from the sign-in page.")
		return
	}
	if !ok {
		if ok, n := s.Logs.Allow("no sign-in"); ok {
			s.log().Warn("GitHub sign-in callback without a started sign-in (expired, replayed or forged)", "suppressed", n)
		}
		page(w, http.StatusBadRequest, "This sign-in is not valid",
			"This browser did not start this sign-in, it took longer than 10 minutes, or it was already used. No session was created. Start again from the sign-in page.")
		return
	}
	if got := q.Get("state"); got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(state)) != 1 {
		if ok, n := s.Logs.Allow("state mismatch"); ok {
			s.log().Warn("GitHub sign-in callback with a state that does not match its cookie (forged)", "suppressed", n)
		}
		page(w, http.StatusBadRequest, "This sign-in is not valid",
			"The sign-in answer does not match the sign-in this browser started (its state differs): it may be forged. No session was created. Start again from the sign-in page.")
		return
	}
	code := q.Get("code")
	if code == "" {
		page(w, http.StatusBadRequest, "This sign-in is not valid", "GitHub's answer carries no code. Start again from the sign-in page.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.GitHub.httpClient())
	tok, err := s.GitHub.OAuth2(s.callbackURL(r)).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		if ok, n := s.Logs.Allow("code exchange"); ok {
			s.log().Warn("GitHub sign-in: code exchange failed", "err", err, "suppressed", n)
		}
		page(w, http.StatusBadGateway, "GitHub did not confirm the sign-in", "Exchanging GitHub's code failed: "+err.Error()+". Start again from the sign-in page.")
		return
	}
	id, err := s.GitHub.Identify(ctx, tok.AccessToken)
	var refused *RefusedError
	var bound *LoginBoundError
	if errors.As(err, &refused) || errors.As(err, &bound) {
		s.log().Warn("GitHub sign-in refused", "err", err)
		page(w, http.StatusForbidden, "You may not sign in to this cluster", err.Error()+".")
		return
	}
	if err != nil {
		s.log().Warn("GitHub sign-in: reading the user failed", "err", err)
		page(w, http.StatusBadGateway, "GitHub did not say who you are", err.Error()+". Try again later.")
		return
	}
	keep := KeepGitHubGrant(ctx, s.Grants, tok.AccessToken, func(err error) {
		s.log().Warn("GitHub sign-in: sealing the user's GitHub grant failed; the session keeps none", "login", id.Login, "err", err)
	})
	secret, k, err := IssueUserToken(ctx, s.W, id, "console session", s.GitHub.sessionTTL(), true, keep)
	if err != nil {
		s.log().Error("GitHub sign-in: recording the session failed", "login", id.Login, "err", err)
		page(w, http.StatusServiceUnavailable, "The cluster could not record your sign-in", err.Error()+". Try again in a moment.")
		return
	}
	s.log().Info("signed in with GitHub", "login", id.Login, "role", id.Role.String(), "session", k.Id)
	s.pruneSessions(ctx, id)
	http.SetCookie(w, sessionCookie(s.secure(r), secret, k.ExpireTime.AsTime()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// pruneSessions deletes the user's expired sessions (best effort), so that the sessions
// of a user who never signs out stay as few as the sign-ins of one session lifetime.
func (s *WebSignIn) pruneSessions(ctx context.Context, id *Identity) {
	now := time.Now()
	for _, k := range s.Tokens.Tokens() {
		if !k.Session || k.GithubUserId != id.ID || k.ExpireTime == nil || now.Before(k.ExpireTime.AsTime()) {
			continue
		}
		cmd := &statev1.Command{Actor: UserActor(id.Login, id.ID),
			Op: &statev1.Command_DeleteApiToken{DeleteApiToken: &statev1.DeleteApiToken{Id: k.Id}}}
		if _, err := s.W.Apply(ctx, cmd); err != nil {
			s.log().Debug("delete an expired session", "session", k.Id, "err", err)
		}
	}
}

func (s *WebSignIn) signOut(w http.ResponseWriter, r *http.Request) {
	secret := sessionSecret(r.Header)
	http.SetCookie(w, sessionCookie(true, "", time.Time{}))
	http.SetCookie(w, sessionCookie(false, "", time.Time{}))
	if secret != "" {
		if k, err := s.Tokens.TokenBySHA256(Hash(secret)); err == nil && k.Session {
			cmd := &statev1.Command{Actor: UserActor(k.GithubLogin, k.GithubUserId),
				Op: &statev1.Command_DeleteApiToken{DeleteApiToken: &statev1.DeleteApiToken{Id: k.Id}}}
			idx, err := s.W.Apply(r.Context(), cmd)
			if err == nil {
				err = s.W.WaitIndex(r.Context(), idx)
			}
			if err != nil {
				http.Error(w, "sign-out failed: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			s.log().Info("signed out", "login", k.GithubLogin, "session", k.Id)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · v9</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}
@media (prefers-color-scheme: dark){body{background:#111;color:#eee}a{color:#8ab4f8}}</style></head>
<body><main><h1>{{.Title}}</h1><p role="alert">{{.Message}}</p><p><a href="/signin">Back to sign in</a></p></main></body></html>
`))

// page answers with a small HTML page saying what went wrong and what to do.
func page(w http.ResponseWriter, code int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = pageTmpl.Execute(w, struct{ Title, Message string }{title, msg})
}
