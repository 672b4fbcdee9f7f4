package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// authHeader is a request header with that Authorization value.
func authHeader(v string) http.Header {
	h := http.Header{}
	if v != "" {
		h.Set("Authorization", v)
	}
	return h
}

type fakeTokens map[string]*statev1.ApiToken // by hash

func (f fakeTokens) TokenBySHA256(sum []byte) (*statev1.ApiToken, error) {
	if k, ok := f[string(sum)]; ok {
		return k, nil
	}
	return nil, errors.New("not found")
}

func (f fakeTokens) ReadTokenBySHA256(sum []byte, fn func(*statev1.ApiToken)) bool {
	k, ok := f[string(sum)]
	if ok {
		fn(k)
	}
	return ok
}

const (
	getProc    = "/v9.component.v1.ComponentService/Get"
	createProc = "/v9.component.v1.ComponentService/Create"
	applyProc  = "/v9.cluster.v1.InternalService/Apply"
)

func testAuthorizer(now time.Time) (*Authorizer, map[string]string) {
	secrets := map[string]string{"dev": NewSecret(), "viewer": NewSecret(), "expired": NewSecret(), "revoked": NewSecret()}
	past := timestamppb.New(now.Add(-time.Hour))
	tokens := fakeTokens{
		string(Hash(secrets["dev"])):     {Id: "a1", Name: "ci", Role: "developer"},
		string(Hash(secrets["viewer"])):  {Id: "a2", Role: "viewer", ExpireTime: timestamppb.New(now.Add(time.Hour))},
		string(Hash(secrets["expired"])): {Id: "a3", Role: "admin", ExpireTime: past},
		string(Hash(secrets["revoked"])): {Id: "a4", Role: "admin", RevokeTime: past},
	}
	return &Authorizer{Tokens: tokens, Now: func() time.Time { return now }}, secrets
}

// TestAuthorizeErrors: each refusal has its code and says why.
func TestAuthorizeErrors(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, s := testAuthorizer(now)
	for _, tc := range []struct {
		name, proc, header string
		code               connect.Code
		says               string
	}{
		{"no token", getProc, "", connect.CodeUnauthenticated, "run `v9 login` or set V9_TOKEN"},
		{"not bearer", getProc, "Basic abc", connect.CodeUnauthenticated, "v9 login"},
		{"unknown", getProc, "Bearer " + NewSecret(), connect.CodeUnauthenticated, "not known"},
		{"expired", getProc, "Bearer " + s["expired"], connect.CodeUnauthenticated, "a3 expired at 2026-01-02T02:04:05Z"},
		{"revoked", getProc, "Bearer " + s["revoked"], connect.CodeUnauthenticated, "a4 was revoked"},
		{"low role", createProc, "Bearer " + s["viewer"], connect.CodePermissionDenied, "needs the developer role; token a2 has the viewer role"},
		{"token on node procedure", applyProc, "Bearer " + s["dev"], connect.CodePermissionDenied, "node certificate"},
		{"unlisted procedure", "/v9.nope.v1.X/Y", "Bearer " + s["dev"], connect.CodePermissionDenied, "not in the access table"},
	} {
		_, err := a.Authorize(context.Background(), tc.proc, authHeader(tc.header))
		if connect.CodeOf(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %s saying %q", tc.name, err, tc.code, tc.says)
		}
	}
	ctx, err := a.Authorize(context.Background(), createProc, authHeader("bearer "+s["dev"]))
	if err != nil {
		t.Fatal(err)
	}
	if p := FromContext(ctx); p == nil || p.Actor() != "token:a1 (ci)" || p.Role != RoleDeveloper {
		t.Fatalf("principal %+v", p)
	}
	if used := a.TakeUsed(); !used["a1"].Equal(now) {
		t.Fatalf("use not recorded: %v", used)
	}
	// A verified node certificate passes node procedures and any role; nothing else does.
	ctx, err = a.Authorize(WithPeerNode(context.Background(), "n2"), applyProc, http.Header{})
	if err != nil || FromContext(ctx).Kind != KindNode || FromContext(ctx).Actor() != "" {
		t.Fatalf("node: %v", err)
	}
}

// FuzzAuthorize: any header on any procedure never panics, and only the one secret is
// accepted.
func FuzzAuthorize(f *testing.F) {
	now := time.Now()
	a, s := testAuthorizer(now)
	f.Add("Bearer " + s["dev"])
	f.Add("Bearer ")
	f.Add("bearer  x ")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		_, err := a.Authorize(context.Background(), createProc, authHeader(header))
		if err == nil && BearerSecret(header) != s["dev"] {
			t.Fatalf("accepted %q", header)
		}
	})
}

// TestAuthorizeSession: a console session cookie is a GitHub user's principal; an expired
// one says to sign in again; a Bearer token wins over a cookie.
func TestAuthorizeSession(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a, s := testAuthorizer(now)
	live, old := NewSecret(), NewSecret()
	tokens := a.Tokens.(fakeTokens)
	tokens[string(Hash(live))] = &statev1.ApiToken{Id: "s1", Role: "admin", GithubLogin: "octo", Session: true, ExpireTime: timestamppb.New(now.Add(time.Hour))}
	tokens[string(Hash(old))] = &statev1.ApiToken{Id: "s2", Role: "admin", GithubLogin: "octo", Session: true, ExpireTime: timestamppb.New(now.Add(-time.Second))}
	for _, name := range []string{SessionCookie, PlainSessionCookie} {
		ctx, err := a.Authorize(context.Background(), createProc, http.Header{"Cookie": {"x=y; " + name + "=" + live}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p := FromContext(ctx); p.Kind != KindUser || p.ID != "octo" || p.Actor() != "user:octo" || !p.Session || p.Token != "s1" {
			t.Fatalf("%s: principal %+v", name, p)
		}
	}
	_, err := a.Authorize(context.Background(), getProc, http.Header{"Cookie": {PlainSessionCookie + "=" + old}})
	if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "console session of octo expired") || !strings.Contains(err.Error(), "sign in again") {
		t.Fatalf("expired session: %v", err)
	}
	h := authHeader("Bearer " + s["viewer"])
	h.Set("Cookie", PlainSessionCookie+"="+live)
	if _, err := a.Authorize(context.Background(), createProc, h); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("bearer and cookie: the viewer token should decide: %v", err)
	}
}

// TestRequireHTTPChangesNeedABearer: a plain HTTP handler guarded by RequireHTTP answers a
// reading request that comes with the console's session cookie alone, but refuses a
// changing one (a form another site posts would carry the cookie), which passes with the
// same secret as a Bearer token.
func TestRequireHTTPChangesNeedABearer(t *testing.T) {
	now := time.Now()
	a, _ := testAuthorizer(now)
	live := NewSecret()
	a.Tokens.(fakeTokens)[string(Hash(live))] = &statev1.ApiToken{Id: "s1", Role: "admin", GithubLogin: "octo", Session: true, ExpireTime: timestamppb.New(now.Add(time.Hour))}
	h := a.RequireHTTP(RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, c := range []struct {
		method, cookie, bearer string
		want                   int
	}{
		{"GET", live, "", http.StatusNoContent},
		{"POST", live, "", http.StatusUnauthorized},
		{"DELETE", live, "", http.StatusUnauthorized},
		{"POST", "", live, http.StatusNoContent},
		{"POST", live, live, http.StatusNoContent},
	} {
		r := httptest.NewRequest(c.method, "/v9/keyring/rotate", nil)
		if c.cookie != "" {
			r.Header.Set("Cookie", PlainSessionCookie+"="+c.cookie)
		}
		if c.bearer != "" {
			r.Header.Set("Authorization", "Bearer "+c.bearer)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s with cookie %v, bearer %v: %d %q, want %d", c.method, c.cookie != "", c.bearer != "", w.Code, w.Body, c.want)
		}
	}
}

// TestUsersTakenOffTheListsLoseTheirTokens: a GitHub user's session and tokens follow the
// sign-in lists at every request, by GitHub user id: an admin moved to the allowed users
// works on as a developer, a user taken off every list is refused at once, with the
// reason, and so is a token whose id no longer holds its login's entry (pinned to, or
// bound to, another id), or that was made before ids were recorded.
func TestUsersTakenOffTheListsLoseTheirTokens(t *testing.T) {
	now := time.Now()
	a, _ := testAuthorizer(now)
	live, old := NewSecret(), NewSecret()
	a.Tokens.(fakeTokens)[string(Hash(live))] = &statev1.ApiToken{Id: "s1", Role: "admin", GithubLogin: "octo", GithubUserId: 7, Session: true, ExpireTime: timestamppb.New(now.Add(time.Hour))}
	a.Tokens.(fakeTokens)[string(Hash(old))] = &statev1.ApiToken{Id: "s2", Role: "admin", GithubLogin: "octo", Session: true, ExpireTime: timestamppb.New(now.Add(time.Hour))}
	a.Users = &GitHubConfig{ClientID: "app", Admins: []string{"Octo:7"}}
	h := http.Header{"Cookie": {PlainSessionCookie + "=" + live}}
	role := func() (Role, error) {
		ctx, err := a.Authorize(context.Background(), createProc, h)
		if err != nil {
			return RoleNone, err
		}
		return FromContext(ctx).Role, nil
	}
	refusedAs := func(code connect.Code, what string, want ...string) {
		t.Helper()
		_, err := role()
		if connect.CodeOf(err) != code {
			t.Fatalf("%s: %v, want %v", what, err, code)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: %v, want it to say %q", what, err, w)
			}
		}
	}
	if r, err := role(); err != nil || r != RoleAdmin {
		t.Fatalf("listed admin: %v %v", r, err)
	}
	a.Users = &GitHubConfig{ClientID: "app", AllowedUsers: []string{"octo:7"}}
	if r, err := role(); err != nil || r != RoleDeveloper {
		t.Fatalf("admin moved to the allowed users: %v %v, want developer", r, err)
	}
	a.Users = &GitHubConfig{ClientID: "app", AllowedUsers: []string{"someone-else"}}
	refused := func(what string, want ...string) {
		t.Helper()
		refusedAs(connect.CodePermissionDenied, what, want...)
	}
	refused("a login taken off the lists", "no longer let in")
	a.Users = &GitHubConfig{ClientID: "app", Admins: []string{"octo:8"}}
	refused("the login pinned to another id", "pinned to GitHub user id 8", "id 7 holds it")
	a.Users = &GitHubConfig{ClientID: "app", Admins: []string{"octo"}, Bindings: fakeBindings{"octo": 7}}
	if r, err := role(); err != nil || r != RoleAdmin {
		t.Fatalf("a bare admin bound to the token's id: %v %v", r, err)
	}
	a.Users.Bindings = fakeBindings{"octo": 8}
	refused("the login bound to another id", "bound to GitHub user id 8", "v9 acl unbind octo", "octo:7")
	a.Users.Bindings = fakeBindings{}
	refused("the binding dropped", "no longer let in")
	a.Users = &GitHubConfig{ClientID: "app", AllowedOrgs: []string{"acme"}}
	if r, err := role(); err != nil || r != RoleDeveloper {
		t.Fatalf("organizations allowed (membership checked at sign-in): %v %v", r, err)
	}
	h = http.Header{"Cookie": {PlainSessionCookie + "=" + old}}
	refusedAs(connect.CodeUnauthenticated, "a session made before ids were recorded", "before v9 recorded GitHub user ids", "sign in again")
}

// fakeBindings binds logins (lower case) to GitHub user ids.
type fakeBindings map[string]int64

func (f fakeBindings) GithubBinding(login string) (*statev1.GithubBinding, bool) {
	id, ok := f[strings.ToLower(login)]
	return &statev1.GithubBinding{Login: strings.ToLower(login), GithubUserId: id}, ok
}

func (f fakeBindings) GithubBindings() []*statev1.GithubBinding { return nil }

// TestParseListEntry: LOGIN or LOGIN:ID, with clear errors for anything else.
func TestParseListEntry(t *testing.T) {
	for in, want := range map[string]ListEntry{
		"alice": {Login: "alice"}, " Alice:583231 ": {Login: "Alice", ID: 583231}, "a-b_c:9223372036854775807": {Login: "a-b_c", ID: 1<<63 - 1},
	} {
		if got, err := ParseListEntry(in); err != nil || got != want {
			t.Errorf("ParseListEntry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"": "no login", ":12": "no login", "-al": "start with '-'", "al ice": "not in a GitHub login", "al.ice": "not in a GitHub login",
		"alice:": "not a positive decimal", "alice:0": "not a positive decimal", "alice:+1": "not a positive decimal",
		"alice:012": "not a positive decimal", "alice:1:2": "not a positive decimal", "alice:9223372036854775808": "too large",
		strings.Repeat("a", MaxLoginLen+1): "at most",
	} {
		if _, err := ParseListEntry(in); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "LOGIN") && !strings.Contains(err.Error(), "api.github.com") {
			t.Errorf("ParseListEntry(%q): %v, want an error saying %q", in, err, want)
		}
	}
	c := &GitHubConfig{ClientID: "app", ClientSecret: "s", AllowedOrgs: []string{"acme"}, Admins: []string{"ok", "bad entry"}}
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "--admins") || !strings.Contains(err.Error(), "bad entry") {
		t.Fatalf("Check with a bad --admins entry: %v", err)
	}
}

// FuzzParseListEntry: any input parses or errs without panicking; what parses prints back
// to itself (login, and :id when pinned) and parses again to the same entry.
func FuzzParseListEntry(f *testing.F) {
	for _, s := range []string{"alice", "alice:1", "a:", ":1", "-a:1", "a:01", "a:99999999999999999999", "a b", "é:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseListEntry(s)
		if err != nil {
			return
		}
		if e.Login == "" || e.ID < 0 || len(e.Login) > MaxLoginLen {
			t.Fatalf("%q parsed to %+v", s, e)
		}
		back := e.Login
		if e.ID != 0 {
			back = fmt.Sprintf("%s:%d", e.Login, e.ID)
		}
		if again, err := ParseListEntry(back); err != nil || again != e || back != strings.TrimSpace(s) {
			t.Fatalf("%q parsed to %+v, which prints as %q and parses to %+v, %v", s, e, back, again, err)
		}
	})
}
