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
