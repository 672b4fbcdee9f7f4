package node

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/internal/githubtest"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestGitHubRenameInheritsNoRole: roles follow GitHub's numeric user ids, not logins. Alice
// (an admin listed by login) signs in through a follower and her login is bound to her id;
// she renames, and the user who registers the freed login is refused with both ids named,
// while her token keeps its role as long as her id stays bound — across a leader change
// and a restart from a snapshot. Carol, pinned by id, stays admin under her new login; the
// new holder of hers is refused. An admin sees and drops the binding: Alice's token stops
// working, and the new holder signs in and is bound. A token made before ids were recorded
// is refused, saying to sign in again.
func TestGitHubRenameInheritsNoRole(t *testing.T) {
	gh := githubtest.New(t)
	carolID := gh.UserID("carol")
	c := NewTestClusterConfig(t, 3, func(cfg *Config) {
		id, secret := gh.OAuthApp()
		cfg.SignIn = auth.GitHubConfig{ClientID: id, ClientSecret: secret, WebURL: gh.WebURL(), APIURL: gh.APIURL(),
			Admins: []string{"alice", fmt.Sprintf("carol:%d", carolID)}, AllowedUsers: []string{"octocat"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	acl := func(n *Node, token string) aclv1connect.ACLServiceClient {
		hc := http.DefaultClient
		if token != "" {
			hc = TokenHTTPClient(token)
		}
		return aclv1connect.NewACLServiceClient(hc, "http://"+n.APIAddr())
	}
	// signIn is what `v9 login --github` does once GitHub's device flow gave it a token.
	signIn := func(n *Node, login string) (*aclv1.GitHubLoginResponse, error) {
		res, err := acl(n, "").GitHubLogin(ctx, connect.NewRequest(&aclv1.GitHubLoginRequest{GithubToken: gh.UserToken(login)}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	refused := func(err error, what string, want ...string) {
		t.Helper()
		if connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Fatalf("%s: %v, want PermissionDenied", what, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: %v, want it to say %q", what, err, w)
			}
		}
	}
	roleOf := func(n *Node, secret string) (string, error) {
		me, err := acl(n, secret).WhoAmI(ctx, connect.NewRequest(&aclv1.WhoAmIRequest{}))
		if err != nil {
			return "", err
		}
		return me.Msg.Role, nil
	}

	aliceID := gh.UserID("alice")
	alice, err := signIn(c.Follower(t), "alice")
	if err != nil || alice.Token.GetRole() != "admin" || alice.Token.GetGithubUserId() != aliceID {
		t.Fatalf("alice signs in through a follower: %v %v", alice, err)
	}
	gh.Rename("alice", "alice-2")
	mallory := gh.UserID("alice")
	_, err = signIn(c.Nodes[0], "alice")
	refused(err, "the new holder of alice's login signs in", fmt.Sprintf("bound to GitHub user id %d", aliceID), fmt.Sprintf("id %d holds it", mallory), "v9 acl unbind alice")
	for _, n := range c.Nodes {
		if r, err := roleOf(n, alice.Secret); err != nil || r != "admin" {
			t.Fatalf("alice's token on %s after her rename: %q %v", n.ID(), r, err)
		}
	}

	// Pinned by id: carol is admin under any login; the new holder of "carol" is not.
	gh.Rename("carol", "carol-2")
	carol, err := signIn(c.Nodes[1], "carol-2")
	if err != nil || carol.Token.GetRole() != "admin" || carol.Login != "carol-2" {
		t.Fatalf("carol signs in under her new login: %v %v", carol, err)
	}
	_, err = signIn(c.Nodes[1], "carol")
	refused(err, "the new holder of carol's login", fmt.Sprintf("pinned to GitHub user id %d", carolID))

	// The binding is replicated state: it survives a snapshot, a leader change and a
	// restart.
	l := c.Leader(t)
	if err := l.RaftSnapshot(); err != nil {
		t.Fatal(err)
	}
	li := indexOf(l.ID())
	c.Stop(li)
	other := c.Leader(t)
	_, err = signIn(other, "alice")
	refused(err, "the new holder of alice's login after a leader change", fmt.Sprintf("bound to GitHub user id %d", aliceID))
	c.Restart(li)
	Eventually(t, 30*time.Second, func() error {
		b, ok := c.Nodes[li].Store().GithubBinding("alice")
		if !ok || b.GithubUserId != aliceID {
			return fmt.Errorf("restarted %s has alice bound to %v", c.Nodes[li].ID(), b)
		}
		return nil
	})

	// Only an admin sees the bindings.
	octo, err := signIn(c.Nodes[0], "octocat")
	if err != nil {
		t.Fatal(err)
	}
	_, err = acl(c.Nodes[0], octo.Secret).ListGitHubBindings(ctx, connect.NewRequest(&aclv1.ListGitHubBindingsRequest{}))
	refused(err, "a developer lists the bindings", "admin")
	list, err := acl(c.Nodes[0], TestToken).ListGitHubBindings(ctx, connect.NewRequest(&aclv1.ListGitHubBindingsRequest{}))
	if err != nil || len(list.Msg.Bindings) != 2 || list.Msg.Bindings[0].Login != "alice" || list.Msg.Bindings[0].GithubUserId != aliceID || list.Msg.Bindings[1].Login != "octocat" {
		t.Fatalf("bindings: %v %v", list, err)
	}

	// An admin drops alice's binding (alice-2 is no longer the cluster's alice): her token
	// stops working on every node, and the new holder of the login signs in and is bound.
	del, err := acl(c.Nodes[0], TestToken).DeleteGitHubBinding(ctx, connect.NewRequest(&aclv1.DeleteGitHubBindingRequest{Login: "Alice"}))
	if err != nil || del.Msg.GithubUserId != aliceID {
		t.Fatalf("drop alice's binding: %v %v", del, err)
	}
	for _, n := range c.Live() {
		Eventually(t, 10*time.Second, func() error {
			_, err := roleOf(n, alice.Secret)
			if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "no longer let in") {
				return fmt.Errorf("alice's token on %s after her binding was dropped: %v", n.ID(), err)
			}
			return nil
		})
	}
	m, err := signIn(c.Nodes[2], "alice")
	if err != nil || m.Token.GetRole() != "admin" || m.Token.GetGithubUserId() != mallory {
		t.Fatalf("the new holder of alice once the binding is dropped: %v %v", m, err)
	}
	if b, ok := c.Nodes[2].Store().GithubBinding("alice"); !ok || b.GithubUserId != mallory {
		t.Fatalf("alice is bound to %v, want %d", b, mallory)
	}
	_, err = acl(c.Nodes[0], TestToken).DeleteGitHubBinding(ctx, connect.NewRequest(&aclv1.DeleteGitHubBindingRequest{Login: "nobody"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("drop a binding that does not exist: %v", err)
	}

	// A token a sign-in made before v9 recorded ids (as an older version wrote it) cannot
	// tell who holds its login now: it is refused, saying to sign in again (Unauthenticated:
	// the console goes to its sign-in page).
	old := auth.NewSecret()
	k := &statev1.ApiToken{Id: auth.NewAccessorID(), Name: "v9 login", Role: "developer", Sha256: auth.Hash(old), GithubLogin: "octocat", Creator: "user:octocat"}
	idx, err := c.Leader(t).Apply(ctx, &statev1.Command{Op: &statev1.Command_CreateApiToken{CreateApiToken: &statev1.CreateApiToken{Token: k}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[0].WaitIndex(ctx, idx); err != nil {
		t.Fatal(err)
	}
	_, err = roleOf(c.Nodes[0], old)
	if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "before v9 recorded GitHub user ids") || !strings.Contains(err.Error(), "sign in again") {
		t.Fatalf("a token made before ids were recorded: %v", err)
	}
}
