package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velocity9/v9/node"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
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
	mustCLI(t, cli("token", "revoke", acc)...)
	r := failCLI(t, "was revoked", cli("component", "list")...)
	if !strings.Contains(r.stderr, "v9 login") {
		t.Fatalf("revoked token: no hint how to log in again:\n%s", r)
	}

	// Without any token: refused, with the way out.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	failCLI(t, "run `v9 login` or set V9_TOKEN", cli("component", "get", "tok")...)
}
