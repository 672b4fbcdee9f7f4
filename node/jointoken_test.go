package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
)

// TestJoinTokenIssuesNodeCertificate: an admin makes a one-time join token through a
// follower; a new machine, knowing only the token and a node's address, gets its node
// certificate (its key made locally), joins the cluster with it and serves. The same token
// again, a made-up token, a token for another cluster's CA, a token for a member's id and a
// join token used as an API token are all refused with a message saying which.
func TestJoinTokenIssuesNodeCertificate(t *testing.T) {
	c := NewTestCluster(t, 3)
	f := c.Follower(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	acl := aclv1connect.NewACLServiceClient(TestHTTPClient, "http://"+f.APIAddr())
	newJoinToken := func() string {
		t.Helper()
		res, err := acl.CreateToken(ctx, connect.NewRequest(&aclv1.CreateTokenRequest{Role: auth.JoinRole}))
		if err != nil {
			t.Fatalf("create a join token: %v", err)
		}
		if !strings.HasPrefix(res.Msg.Secret, auth.JoinTokenPrefix) || res.Msg.Token.GetExpireTime() == nil {
			t.Fatalf("join token %q expires %v", res.Msg.Secret, res.Msg.Token.GetExpireTime())
		}
		return res.Msg.Secret
	}
	token := newJoinToken()

	// A developer cannot make one.
	dev := roleTokens(t, c.Leader(t))[auth.RoleDeveloper]
	_, err := aclv1connect.NewACLServiceClient(TokenHTTPClient(dev), "http://"+f.APIAddr()).CreateToken(ctx, connect.NewRequest(&aclv1.CreateTokenRequest{Role: auth.JoinRole}))
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a developer's join token: %v", err)
	}
	// A join token is no API token.
	_, err = aclv1connect.NewACLServiceClient(TokenHTTPClient(token), "http://"+f.APIAddr()).WhoAmI(ctx, connect.NewRequest(&aclv1.WhoAmIRequest{}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "join token") {
		t.Fatalf("a join token as an API token: %v", err)
	}

	dir := t.TempDir()
	if err := auth.JoinWithToken(ctx, f.APIAddr(), token, dir, "n1", auth.NodeCertOptions{}); err == nil || !strings.Contains(err.Error(), "already a member") {
		t.Fatalf("a join token for member n1: %v", err)
	}
	if err := auth.JoinWithToken(ctx, f.APIAddr(), token, dir, "n4", auth.NodeCertOptions{}); err != nil {
		t.Fatalf("join with the token: %v", err)
	}
	for _, name := range []string{auth.CACertFile, auth.NodeCertFile("n4"), auth.NodeKeyFile("n4")} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, auth.CAKeyFile)); err == nil {
		t.Fatal("the CA key was handed out")
	}
	for name, tc := range map[string]struct{ token, want string }{
		"used again":       {token, "already used"},
		"made up":          {auth.NewJoinSecret(mustCADER(t, c)), "not known"},
		"another CA":       {auth.NewJoinSecret([]byte("another CA")), "not the one this join token was made for"},
		"not a join token": {TestToken, "not a join token"},
	} {
		err := auth.JoinWithToken(ctx, f.APIAddr(), tc.token, t.TempDir(), "n5", auth.NodeCertOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want %q", name, err, tc.want)
		}
	}

	// The new node joins with the issued certificate (through a follower: sent on to the leader).
	nt, err := auth.LoadNodeTLS(auth.TLSDirFiles(dir, "n4"))
	if err != nil {
		t.Fatalf("load the issued certificate: %v", err)
	}
	cfg := c.config(3)
	cfg.TLS, cfg.Join = nt, []string{f.APIAddr()}
	n4 := c.start(cfg)
	Eventually(t, 30*time.Second, func() error {
		if _, err := c.Leader(t).Store().Node("n4"); err != nil || !n4.hasConfiguration() {
			return fmt.Errorf("n4 did not join with its issued certificate: %v", err)
		}
		return nil
	})
}

func mustCADER(t *testing.T, c *TestCluster) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.TLSDir(), auth.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	der, err := auth.CADER(b)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestJoinTokenRefusesAnOverlongTTL: `v9 token create --role join --ttl` with a TTL past the
// join token's limit must be refused. A TTL of 9,223,372,037 seconds overflows
// time.Duration(ttl)*time.Second to a negative duration, which passes the "at most" check:
// the call succeeds and hands out a join token that expired centuries ago.
func TestJoinTokenRefusesAnOverlongTTL(t *testing.T) {
	c := NewTestCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	acl := aclv1connect.NewACLServiceClient(TestHTTPClient, "http://"+c.Nodes[0].APIAddr())
	res, err := acl.CreateToken(ctx, connect.NewRequest(&aclv1.CreateTokenRequest{Role: auth.JoinRole, TtlSeconds: 9_223_372_037}))
	if err == nil {
		t.Fatalf("an overlong join-token TTL was accepted: the token expires at %v", res.Msg.Token.GetExpireTime().AsTime())
	}
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("an overlong join-token TTL: %v, want InvalidArgument", err)
	}
}
