package node

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/internal/githubtest"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
)

// TestTokenOfAUserTakenOffTheListsIsRefused: "a login taken off the lists loses its sessions
// and tokens at once" (auth.Authorizer.Users). A GitHub user signed in to the console can
// make API tokens (`v9 token create`, the Tokens page); once the user is taken off the
// lists, those tokens must stop working with the user's sessions. Today CreateToken records
// the user only as the token's creator: the token is checked as a plain token, never against
// the lists, and keeps the removed user's access.
func TestTokenOfAUserTakenOffTheListsIsRefused(t *testing.T) {
	gh := githubtest.New(t)
	c := NewTestClusterConfig(t, 1, signInConfig(gh, time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gh.SignInAs("octocat")
	b := newBrowser(t)
	if code, _, body := b.signIn(t, c.Nodes[0].APIAddr(), "/"); code != http.StatusOK {
		t.Fatalf("sign-in: %d %s", code, body)
	}
	session := &http.Client{Transport: cookieTransport{auth.PlainSessionCookie + "=" + b.sessionCookie(t, c.Nodes[0].APIAddr())}}
	res, err := aclv1connect.NewACLServiceClient(session, "http://"+c.Nodes[0].APIAddr()).CreateToken(ctx,
		connect.NewRequest(&aclv1.CreateTokenRequest{Name: "octocat's ci", Role: auth.RoleViewer.String()}))
	if err != nil {
		t.Fatalf("create a token with octocat's session: %v", err)
	}
	tok := TokenHTTPClient(res.Msg.Secret)
	if _, err := whoAmI(ctx, tok, c.Nodes[0].APIAddr()); err != nil {
		t.Fatalf("octocat's new token: %v", err)
	}
	// octocat is taken off the lists (no allowed users, no allowed organizations).
	c.Stop(0)
	c.cfgs[0].SignIn.AllowedUsers, c.cfgs[0].SignIn.AllowedOrgs = nil, nil
	n := c.Restart(0)
	Eventually(t, 20*time.Second, func() error {
		_, err := whoAmI(ctx, session, n.APIAddr())
		if err == nil {
			return errors.New("octocat's session still works")
		}
		return nil
	})
	if who, err := whoAmI(ctx, tok, n.APIAddr()); err == nil {
		t.Fatalf("octocat was taken off the lists and its session is refused, but the token it made still works (as %s %q, role %s)", who.Kind, who.Name, who.Role)
	}
}
