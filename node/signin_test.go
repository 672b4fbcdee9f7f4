package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/internal/githubtest"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// signInConfig points a node's GitHub sign-in at the fake GitHub.
func signInConfig(gh *githubtest.Server, ttl time.Duration) func(*Config) {
	return func(c *Config) {
		id, secret := gh.OAuthApp()
		c.SignIn = auth.GitHubConfig{
			ClientID: id, ClientSecret: secret, WebURL: gh.WebURL(), APIURL: gh.APIURL(),
			AllowedUsers: []string{"octocat"}, AllowedOrgs: []string{"acme"}, Admins: []string{"alice"},
			SessionTTL: ttl,
		}
	}
}

// browser is a cookie-keeping HTTP client that follows redirects and remembers where it went.
type browser struct {
	*http.Client
	visited []string
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{}
	b.Client = &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		b.visited = append(b.visited, r.URL.String())
		return nil
	}}
	return b
}

// get fetches url and returns the final status, the final URL and the body.
func (b *browser) get(t *testing.T, u string) (int, string, string) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.String(), string(body)
}

func (b *browser) sessionCookie(t *testing.T, addr string) string {
	u, _ := url.Parse("http://" + addr + "/")
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == auth.PlainSessionCookie {
			return c.Value
		}
	}
	return ""
}

// signIn runs the web flow in b through node addr and returns the final status and body.
func (b *browser) signIn(t *testing.T, addr, next string) (int, string, string) {
	t.Helper()
	return b.get(t, "http://"+addr+auth.LoginPath+"?next="+url.QueryEscape(next))
}

func whoAmI(ctx context.Context, hc *http.Client, addr string) (*aclv1.WhoAmIResponse, error) {
	res, err := aclv1connect.NewACLServiceClient(hc, "http://"+addr).WhoAmI(ctx, connect.NewRequest(&aclv1.WhoAmIRequest{}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// TestGitHubWebSignIn drives the console's sign-in as a browser does, against the fake
// GitHub: the session works on every node, writes with it, is refused cross-origin, and is
// gone after sign-out; a refused user, a refused organization, a forged and a replayed
// state get a clear page and no session; an allowed organization and an admin get in, and
// the new holder of the admin's login after a rename does not.
func TestGitHubWebSignIn(t *testing.T) {
	gh := githubtest.New(t)
	c := NewTestClusterConfig(t, 3, signInConfig(gh, time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n0, n1 := c.Nodes[0].APIAddr(), c.Nodes[1].APIAddr()

	// The console learns that GitHub sign-in is on.
	am, err := aclv1connect.NewACLServiceClient(http.DefaultClient, "http://"+n1).AuthMethods(ctx, connect.NewRequest(&aclv1.AuthMethodsRequest{}))
	if err != nil || am.Msg.Github.GetLoginPath() != auth.LoginPath || am.Msg.Github.GetClientId() == "" {
		t.Fatalf("AuthMethods: %v %v", am, err)
	}

	// octocat (an allowed user) signs in through node 0 and lands where they were going.
	gh.SignInAs("octocat")
	b := newBrowser(t)
	code, final, body := b.signIn(t, n0, "/components/web")
	if code != http.StatusOK || !strings.HasSuffix(final, "/components/web") {
		t.Fatalf("sign-in ended at %s with %d: %s", final, code, body)
	}
	var callback string
	for _, v := range b.visited {
		if strings.Contains(v, auth.CallbackPath) {
			callback = v
		}
		if strings.Contains(v, "/login/oauth/authorize") && (!strings.Contains(v, "code_challenge_method=S256") || !strings.Contains(v, "state=")) {
			t.Fatalf("authorize request without state or S256 PKCE: %s", v)
		}
	}
	if callback == "" {
		t.Fatalf("no callback among %v", b.visited)
	}
	secret := b.sessionCookie(t, n0)
	if secret == "" {
		t.Fatal("no session cookie after sign-in")
	}

	// The session is accepted by another node (the jar sends the cookie to every port of
	// 127.0.0.1, as a browser would to the same host).
	me, err := whoAmI(ctx, b.Client, n1)
	if err != nil || me.Kind != "user" || me.Id != "octocat" || me.Role != "developer" || !me.GetToken().GetSession() {
		t.Fatalf("WhoAmI on another node with the session: %v %v", me, err)
	}
	// It writes, and the write is audited as the user.
	comps := componentv1connect.NewComponentServiceClient(b.Client, "http://"+c.Nodes[2].APIAddr())
	if _, err := comps.Create(ctx, connect.NewRequest(&componentv1.CreateRequest{Name: "web", Runtime: statev1.Runtime_RUNTIME_WASM})); err != nil {
		t.Fatalf("create with the session: %v", err)
	}
	Eventually(t, 10*time.Second, func() error {
		for _, e := range c.Nodes[0].Audit(0) {
			if e.Actor == auth.UserActor("octocat", gh.UserID("octocat")) && e.Op == "create_component" {
				return nil
			}
		}
		return fmt.Errorf("audit has no create by user:octocat: %v", c.Nodes[0].Audit(0))
	})

	// A cross-origin write with the cookie is refused before it reaches the API.
	for _, h := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+n0+componentv1connect.ComponentServiceDeleteProcedure, strings.NewReader(`{"name":"web"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin delete with %v answered %d", h, resp.StatusCode)
		}
	}

	// Replaying the callback finds no started sign-in: a clear page, no new session.
	code, _, body = b.get(t, callback)
	if code != http.StatusBadRequest || !strings.Contains(body, "already used") || b.sessionCookie(t, n0) != secret {
		t.Fatalf("replayed callback: %d %s", code, body)
	}

	// A forged state (the browser started a sign-in, the answer carries another state).
	f := newBrowser(t)
	f.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := f.Get("http://" + n0 + auth.LoginPath)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %v %v", resp, err)
	}
	resp.Body.Close()
	code, _, body = f.get(t, "http://"+n0+auth.CallbackPath+"?code=abc&state=forged")
	if code != http.StatusBadRequest || !strings.Contains(body, "may be forged") || f.sessionCookie(t, n0) != "" {
		t.Fatalf("forged state: %d %s", code, body)
	}
	// A callback in a browser that started nothing.
	code, _, body = newBrowser(t).get(t, "http://"+n1+auth.CallbackPath+"?code=abc&state=xyz")
	if code != http.StatusBadRequest || !strings.Contains(body, "did not start this sign-in") {
		t.Fatalf("callback without a started sign-in: %d %s", code, body)
	}

	// A user neither listed nor in an allowed organization, and one in another organization.
	gh.SetOrgs("dave", "other-org")
	for _, login := range []string{"mallory", "dave"} {
		gh.SignInAs(login)
		r := newBrowser(t)
		code, _, body = r.signIn(t, n0, "/")
		if code != http.StatusForbidden || !strings.Contains(body, "GitHub user "+login+" may not sign in") || r.sessionCookie(t, n0) != "" {
			t.Fatalf("refused user %s: %d %s", login, code, body)
		}
	}
	// A member of an allowed organization gets in; an admin gets the admin role.
	gh.SetOrgs("erin", "other-org", "acme")
	for login, role := range map[string]string{"erin": "developer", "alice": "admin"} {
		gh.SignInAs(login)
		r := newBrowser(t)
		if code, _, body := r.signIn(t, n1, "/"); code != http.StatusOK {
			t.Fatalf("%s sign-in: %d %s", login, code, body)
		}
		if me, err := whoAmI(ctx, r.Client, n0); err != nil || me.Id != login || me.Role != role {
			t.Fatalf("%s: WhoAmI %v %v", login, me, err)
		}
	}
	// The admin renames; whoever registers the freed login gets a page naming both ids, and
	// no session.
	aliceID := gh.UserID("alice")
	gh.Rename("alice", "alice-renamed")
	gh.SignInAs("alice")
	r := newBrowser(t)
	code, _, body = r.signIn(t, n0, "/")
	if want := fmt.Sprintf("bound to GitHub user id %d", aliceID); code != http.StatusForbidden || !strings.Contains(body, want) || !strings.Contains(body, fmt.Sprintf("id %d holds it", gh.UserID("alice"))) || r.sessionCookie(t, n0) != "" {
		t.Fatalf("the new holder of alice's login: %d %s", code, body)
	}

	// Sign-out deletes the session: its cookie, sent again, is refused on every node.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+n1+auth.SignOutPath, nil)
	resp, err = b.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sign out: %v %v", resp, err)
	}
	resp.Body.Close()
	if b.sessionCookie(t, n0) != "" {
		t.Fatal("the session cookie survived sign-out")
	}
	stale := &http.Client{Transport: cookieTransport{auth.PlainSessionCookie + "=" + secret}}
	// Refused at once by the node that signed out; by the others once they apply the delete.
	for _, n := range c.Nodes {
		Eventually(t, 5*time.Second, func() error {
			_, err := whoAmI(ctx, stale, n.APIAddr())
			if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "not known") {
				return fmt.Errorf("signed-out session on %s: %v", n.ID(), err)
			}
			return nil
		})
	}
}

// TestGitHubSessionExpires: an expired session is refused, saying it expired and to sign
// in again.
func TestGitHubSessionExpires(t *testing.T) {
	gh := githubtest.New(t)
	c := NewTestClusterConfig(t, 1, signInConfig(gh, 2*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gh.SignInAs("octocat")
	b := newBrowser(t)
	if code, _, body := b.signIn(t, c.Nodes[0].APIAddr(), "/"); code != http.StatusOK {
		t.Fatalf("sign-in: %d %s", code, body)
	}
	secret := b.sessionCookie(t, c.Nodes[0].APIAddr())
	if _, err := whoAmI(ctx, b.Client, c.Nodes[0].APIAddr()); err != nil {
		t.Fatalf("fresh session: %v", err)
	}
	// The browser drops the cookie at expiry; a client that kept it is refused by the node.
	stale := &http.Client{Transport: cookieTransport{auth.PlainSessionCookie + "=" + secret}}
	Eventually(t, 10*time.Second, func() error {
		_, err := whoAmI(ctx, stale, c.Nodes[0].APIAddr())
		if err == nil {
			return errStillValid
		}
		if !strings.Contains(err.Error(), "console session of octocat expired") || !strings.Contains(err.Error(), "sign in again") {
			t.Fatalf("expired session: %v", err)
		}
		return nil
	})

	// Signing in again deletes the expired session from the state.
	if code, _, body := newBrowser(t).signIn(t, c.Nodes[0].APIAddr(), "/"); code != http.StatusOK {
		t.Fatalf("second sign-in: %d %s", code, body)
	}
	Eventually(t, 10*time.Second, func() error {
		sessions := 0
		for _, k := range c.Nodes[0].Tokens() {
			if k.Session {
				sessions++
				if k.Sha256 != nil && string(k.Sha256) == string(auth.Hash(secret)) {
					return errors.New("the expired session is still in the state")
				}
			}
		}
		if sessions != 1 {
			return fmt.Errorf("%d sessions in the state, want the new one only", sessions)
		}
		return nil
	})
}

var errStillValid = errors.New("the session is still accepted")

type cookieTransport struct{ cookie string }

func (c cookieTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Cookie", c.cookie)
	return http.DefaultTransport.RoundTrip(r)
}
