package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velocity9/v9/node"
)

// TestCLIKeyringRotate: `v9 operator keyring rotate` makes a new active root key on every
// node; the old key stays to read the secret it sealed and cannot be removed while it
// does; the next write of the secret (through a follower) seals it with the new key, and
// then the old key is removed from every node. The active key is never removed, and a
// developer may not rotate.
func TestCLIKeyringRotate(t *testing.T) {
	c := node.NewTestCluster(t, 3)
	f := c.Follower(t)
	cli := func(args ...string) []string { return append([]string{"--addr", f.APIAddr()}, args...) }
	value := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(value, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, cli("component", "create", "kr", "--runtime", "wasm")...)
	mustCLI(t, cli("secret", "set", "kr", "K", "--from-file", value)...)
	old := f.Keyring().Keys.Active()
	if old == "" {
		t.Fatal("no active key after sealing a secret")
	}
	if out := mustCLI(t, cli("operator", "keyring", "list")...); !strings.Contains(out.stdout, old) {
		t.Fatalf("list:\n%s", out)
	}

	out := mustCLI(t, cli("operator", "keyring", "rotate")...)
	next := f.Keyring().Keys.Active()
	if next == old || !strings.Contains(out.stdout, next) || strings.Contains(out.stdout, "not reached") {
		t.Fatalf("rotate: active %s (was %s):\n%s", next, old, out)
	}
	for _, n := range c.Live() {
		if got := n.Keyring().Keys.Active(); got != next || !n.Keyring().Keys.Has(old) {
			t.Fatalf("%s after rotate: active %s, holds old %v", n.ID(), got, n.Keyring().Keys.Has(old))
		}
	}
	failCLI(t, "still seals 1", cli("operator", "keyring", "remove", old)...)
	failCLI(t, "active key", cli("operator", "keyring", "remove", next)...)

	// The next write seals with the new key; then the old one goes everywhere.
	mustCLI(t, cli("secret", "set", "kr", "K", "--from-file", value)...)
	id := mustComponentID(t, f, "kr")
	if s := f.Store().Secrets(id); len(s) != 1 || s[0].KeyId != next {
		t.Fatalf("secret after the next write: %v", s)
	}
	mustCLI(t, cli("operator", "keyring", "remove", old)...)
	for _, n := range c.Live() {
		if n.Keyring().Keys.Has(old) {
			t.Fatalf("%s still holds the removed key", n.ID())
		}
	}

	dev := strings.TrimSpace(mustCLI(t, cli("--json", "token", "create", "--name", "d", "--role", "developer")...).stdout)
	secret := dev[strings.Index(dev, "v9s_"):]
	secret = secret[:strings.IndexByte(secret, '"')]
	failCLI(t, "needs the admin role", cli("--token", secret, "operator", "keyring", "rotate")...)
}
