package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/node"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
)

// TestCLITokens walks the token life cycle through the CLI against a three-node cluster: a
// second bootstrap fails, an admin creates a developer token, login keeps it (0600), the
// developer works with it and cannot do admin things, the audit log names it, and once
// revoked the next command fails saying so.
func TestCLITokens(t *testing.T) {
	c := node.NewTestCluster(t, 3)
	addr := c.Follower(t).APIAddr()
	cli := func(args ...string) []string { return append([]string{"--addr", addr}, args...) }

	failCLI(t, "already bootstrapped", cli("acl", "bootstrap")...)

	var created aclv1.CreateTokenResponse
	decode(t, mustCLI(t, cli("--json", "token", "create", "--name", "ci", "--role", "developer")...), &created)
	secret, acc := created.GetSecret(), created.GetToken().GetAccessorId()
	if !strings.HasPrefix(secret, "v9s_") || acc == "" || created.GetToken().GetRole() != "developer" {
		t.Fatalf("token create returned %v", &created)
	}

	// login checks the token and keeps it; commands then use it without --token.
	t.Setenv("V9_TOKEN", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	out := mustCLI(t, cli("login", "--token", secret)...)
	if !strings.Contains(out.stdout, acc) || !strings.Contains(out.stdout, "developer") {
		t.Fatalf("login printed %s", out)
	}
	path := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "v9", "token")
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file %s: %v, %v", path, st, err)
	}
	mustCLI(t, cli("component", "create", "tok", "--runtime", "wasm")...)
	failCLI(t, "needs the admin role", cli("nodes", "drain", "n1")...)
	failCLI(t, "needs the admin role", cli("audit")...)

	// The audit log, read by the admin, names the developer token as the actor.
	audit := mustCLI(t, cli("--token", node.TestToken, "audit")...)
	if !strings.Contains(audit.stdout, "token:"+acc+" (ci)") || !strings.Contains(audit.stdout, "create_component") {
		t.Fatalf("audit does not show the developer's create:\n%s", audit)
	}
	list := mustCLI(t, cli("token", "list")...)
	if !strings.Contains(list.stdout, acc) || strings.Contains(list.stdout, secret) {
		t.Fatalf("token list:\n%s", list)
	}

	// Revoke the token in use: the next command fails and says why.
	if out := mustCLI(t, cli("token", "revoke", acc)...).stdout; out != "token "+acc+" revoked\n" {
		t.Fatalf("token revoke said %q", out)
	}
	r := failCLI(t, "was revoked", cli("component", "list")...)
	if !strings.Contains(r.stderr, "v9 login") {
		t.Fatalf("revoked token: no hint how to log in again:\n%s", r)
	}

	// Without any token: refused, with the way out.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	failCLI(t, "run `v9 login` or set V9_TOKEN", cli("component", "get", "tok")...)
}

// TestCLIOverTLS: the CLI reaches the API over TLS, verifying the node's certificate
// against the cluster CA given by --ca, by V9_CA, or kept in the config dir as `v9 dev`
// does; without the CA it fails with a hint. An admin makes a join token with
// `v9 token create --join`.
func TestCLIOverTLS(t *testing.T) {
	c := node.NewTestCluster(t, 1)
	addr := c.Leader(t).APIAddr()
	ca := filepath.Join(c.TLSDir(), "ca.pem")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())

	r := failCLI(t, "TLS to the v9 node", "--addr", "https://"+addr, "cluster", "status")
	if !strings.Contains(r.stderr, "--ca") {
		t.Fatalf("no hint about --ca:\n%s", r)
	}
	mustCLI(t, "--addr", "https://"+addr, "--ca", ca, "cluster", "status")
	mustCLI(t, "--addr", addr, "--ca", ca, "cluster", "status") // --ca without a scheme means https
	t.Setenv("V9_CA", ca)
	mustCLI(t, "--addr", "https://"+addr, "cluster", "status")
	t.Setenv("V9_CA", "")
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeCAFile(b); err != nil { // as v9 dev does
		t.Fatal(err)
	}
	mustCLI(t, "--addr", "https://"+addr, "cluster", "status")
	mustCLI(t, "--addr", addr, "cluster", "status") // and plain HTTP still works

	out := mustCLI(t, "--addr", "https://"+addr, "token", "create", "--join")
	if !strings.Contains(out.stdout, "v9j_") || !strings.Contains(out.stdout, "--join-token") {
		t.Fatalf("token create --join printed:\n%s", out)
	}
}

// TestCLITokenListShowsNamesAsText: any token holder, a viewer included, names the tokens it
// creates, and an admin's `v9 token list` (and `v9 audit`, whose actor names the token)
// prints every name. A name is free text today (only trimmed and bounded in length): a
// viewer's token named with a newline and terminal escapes forges rows in the admin's table
// and rewrites the admin's terminal. The name must be refused at creation, or printed
// escaped.
func TestCLITokenListShowsNamesAsText(t *testing.T) {
	c := node.NewTestCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api := "http://" + c.Nodes[0].APIAddr()
	admin := aclv1connect.NewACLServiceClient(node.TestHTTPClient, api)
	v, err := admin.CreateToken(ctx, connect.NewRequest(&aclv1.CreateTokenRequest{Name: "viewer", Role: "viewer"}))
	if err != nil {
		t.Fatalf("create a viewer token: %v", err)
	}
	viewer := aclv1connect.NewACLServiceClient(node.TokenHTTPClient(v.Msg.Secret), api)
	forged := "ci\nFORGEDACCESSOR  root  admin  -  never  -  active\x1b[2K\x1b]0;pwned\x07"
	if _, err := viewer.CreateToken(ctx, connect.NewRequest(&aclv1.CreateTokenRequest{Name: forged, Role: "viewer"})); err != nil {
		return // refused at creation: fine
	}
	out := mustCLI(t, "--addr", c.Nodes[0].APIAddr(), "token", "list").stdout
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "FORGEDACCESSOR") {
			t.Errorf("a viewer's token name forged a row of the admin's token list:\n%s", out)
		}
	}
	if strings.ContainsRune(out, '\x1b') || strings.ContainsRune(out, '\a') {
		t.Errorf("the admin's token list prints a viewer's terminal escapes raw: %q", out)
	}
}

// TestCLITokenCreateShortTTLIsNotForever: `v9 token create --ttl D` asks for a token that
// expires after D; 0 means never. A D under a second (--ttl 500ms) is sent as 0 seconds and
// makes a token that never expires: the opposite of what was asked, reported as success.
// It must expire (within a second) or be refused.
func TestCLITokenCreateShortTTLIsNotForever(t *testing.T) {
	c := node.NewTestCluster(t, 1)
	r := runCLIWithin(t, 30*time.Second, "--addr", c.Nodes[0].APIAddr(), "--json", "token", "create", "--name", "brief", "--role", "viewer", "--ttl", "500ms")
	if r.code != 0 {
		return // refused: fine
	}
	var res aclv1.CreateTokenResponse
	decode(t, r, &res)
	if res.GetToken().GetExpireTime() == nil {
		t.Fatalf("--ttl 500ms made a token that never expires: %s", r)
	}
}

// TestCellEscapesControlCharacters: free text printed in a table cell keeps printable text
// as it is and quotes text with control characters, so that it cannot forge rows or send
// terminal escapes.
func TestCellEscapesControlCharacters(t *testing.T) {
	if got := cell("ci token é"); got != "ci token é" {
		t.Errorf("printable text changed: %q", got)
	}
	got := cell("ci\nFORGED\x1b[2K\a")
	if strings.ContainsAny(got, "\n\x1b\a") {
		t.Errorf("control characters printed raw: %q", got)
	}
}
