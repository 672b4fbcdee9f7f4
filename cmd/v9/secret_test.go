package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/node"
	secretv1 "github.com/velocity9/v9/rpc/gen/v9/secret/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestCLISecrets sets a secret with `v9 secret set` through a follower of a three-node
// cluster and reads it back only where it belongs: in the environment of every replica of
// the component (hello prints $GREETING). It is in no read API, no --json output, no log
// line, and not in plain text in any file of any node's data dir (raft.db, snapshots) or
// an operator snapshot. Then a tampered ciphertext in the state stops the instances from
// starting, with the secret reported unreadable, instead of serving garbage.
func TestCLISecrets(t *testing.T) {
	dir := helloCopy(t)
	if err := os.WriteFile(filepath.Join(dir, "v9.toml"), []byte("name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"hello.wasm\"\n[scale]\nmin = 3\nmax = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := node.NewTestCluster(t, 3)
	warmWasmCache(t, filepath.Join(dir, "hello.wasm"))
	f := c.Follower(t)
	cli := func(args ...string) []string { return append([]string{"--addr", f.APIAddr()}, args...) }
	mustCLI(t, cli("deploy", dir)...)

	const value = "s3cr3t-Value-4242"
	valueFile := filepath.Join(t.TempDir(), "greeting")
	if err := os.WriteFile(valueFile, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	failCLI(t, "environment variable name", cli("secret", "set", "hello", "NOT-A-NAME", "--from-file", valueFile)...)
	failCLI(t, "not found", cli("secret", "set", "nosuch", "GREETING", "--from-file", valueFile)...)
	var outputs []cliResult
	outputs = append(outputs, mustCLI(t, cli("secret", "set", "hello", "GREETING", "--from-file", valueFile)...))

	// Every replica, reached through every node's proxy, restarts with it in its environment.
	waitEveryReplicaGreets(t, c, value)
	node.Eventually(t, 30*time.Second, func() error {
		var running int
		for _, p := range f.Store().Placements("") {
			if p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
				running++
			}
		}
		if running != 3 {
			return fmt.Errorf("%d replicas running, want 3", running)
		}
		return nil
	})

	var list secretv1.ListResponse
	r := mustCLI(t, cli("--json", "secret", "list", "hello")...)
	decode(t, r, &list)
	if len(list.Secrets) != 1 || list.Secrets[0].Name != "GREETING" || list.Secrets[0].UpdateTime == nil {
		t.Fatalf("secret list --json: %v", &list)
	}
	outputs = append(outputs, r, mustCLI(t, cli("secret", "list", "hello")...),
		mustCLI(t, cli("--json", "component", "get", "hello", "--consistent")...),
		mustCLI(t, cli("--json", "component", "list", "--consistent")...),
		mustCLI(t, cli("--json", "deployments", "list", "hello")...),
		mustCLI(t, cli("--json", "audit")...),
		mustCLI(t, cli("logs", "hello", "-n", "500")...))
	snap := filepath.Join(t.TempDir(), "op.snap")
	outputs = append(outputs, mustCLI(t, cli("operator", "snapshot", "save", snap)...))
	for _, o := range outputs {
		if strings.Contains(o.stdout+o.stderr, value) {
			t.Errorf("the secret value shows in %s", o)
		}
	}
	// Raft snapshots too, then every file of every node and the operator snapshot.
	for _, n := range c.Live() {
		if err := n.RaftSnapshot(); err != nil {
			t.Fatalf("raft snapshot on %s: %v", n.ID(), err)
		}
	}
	files := []string{snap}
	for _, n := range c.Live() {
		_ = filepath.WalkDir(n.DataDir(), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
	}
	sawRaftDB, sawSnap, sawKeyring := 0, 0, 0
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(value)) {
			t.Errorf("the secret value is in plain text in %s", p)
		}
		switch base := filepath.Base(p); {
		case base == "raft.db":
			sawRaftDB++
		case base == "state.bin" || strings.HasSuffix(filepath.Dir(p), "snapshots") || strings.Contains(p, "/snapshots/"):
			sawSnap++
		case base == "keyring.json":
			sawKeyring++
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
			}
		}
	}
	if sawRaftDB != 3 || sawSnap < 3 || sawKeyring != 3 {
		t.Fatalf("grepped %d raft.db, %d snapshot files, %d keyrings; want 3, >= 3, 3 (one per node): %v", sawRaftDB, sawSnap, sawKeyring, files)
	}

	// A new value from stdin rolls every replica onto it.
	const value2 = "second-Value-77"
	root := newRootCmd(&app{logger: slog.New(slog.DiscardHandler)})
	root.SetArgs(cli("secret", "set", "hello", "GREETING"))
	root.SetIn(strings.NewReader(value2 + "\n"))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("secret set from stdin: %v\n%s", err, out.String())
	}
	waitEveryReplicaGreets(t, c, value2)

	// A tampered ciphertext: the new instances report the secret unreadable and never run;
	// the instances with the last good value keep serving (new ones first, old ones stop
	// only as they run), so nothing ever runs with garbage.
	sec := f.Store().Secrets(mustComponentID(t, f, "hello"))[0]
	sec.Ciphertext[0] ^= 0xff
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.Apply(auth.AsCaller(ctx, node.TestToken), &statev1.Command{Op: &statev1.Command_PutSecret{PutSecret: &statev1.PutSecret{
		Component: "hello", Name: "GREETING", KeyId: sec.KeyId, Nonce: sec.Nonce, Ciphertext: sec.Ciphertext,
	}}}); err != nil {
		t.Fatal(err)
	}
	node.Eventually(t, 30*time.Second, func() error {
		failed := 0
		for _, p := range f.Store().Placements("") {
			if strings.Contains(p.Reason, "secret GREETING is unreadable") {
				failed++
			}
		}
		if failed != 3 {
			return fmt.Errorf("%d placements report the secret unreadable, want 3", failed)
		}
		return nil
	})
	for _, n := range c.Live() {
		if code, body, err := httpGet("http://" + n.ProxyAddr() + "/hello/"); err != nil || code != http.StatusOK || !strings.Contains(body, value2) {
			t.Fatalf("with a tampered secret, %s does not serve the last good value: %d %q %v", n.ID(), code, body, err)
		}
	}
	logs := mustCLI(t, cli("logs", "hello", "-n", "500")...)
	if !strings.Contains(logs.stdout, "secret GREETING is unreadable") {
		t.Errorf("logs do not say the secret is unreadable:\n%s", logs.stdout)
	}

	// Deleting it rolls the instances back to an environment without it.
	if out := mustCLI(t, cli("secret", "delete", "hello", "GREETING")...).stdout; out != "secret GREETING of hello deleted\n" {
		t.Fatalf("secret delete said %q", out)
	}
	failCLI(t, "not found", cli("secret", "delete", "hello", "GREETING")...)
	node.Eventually(t, 30*time.Second, func() error {
		code, body, err := httpGet("http://" + f.ProxyAddr() + "/hello/")
		if err != nil || code != http.StatusOK || strings.Contains(body, value) || strings.Contains(body, value2) {
			return fmt.Errorf("after delete: %d %q %v", code, body, err)
		}
		return nil
	})
}

func mustComponentID(t *testing.T, n *node.Node, name string) string {
	t.Helper()
	comp, err := n.Store().Component(name)
	if err != nil {
		t.Fatal(err)
	}
	return comp.Id
}

// waitEveryReplicaGreets waits until six requests in a row through each live node's proxy
// are answered "hello from wasm "+greeting: every replica runs with it.
func waitEveryReplicaGreets(t *testing.T, c *node.TestCluster, greeting string) {
	t.Helper()
	for _, n := range c.Live() {
		url := "http://" + n.ProxyAddr() + "/hello/"
		node.Eventually(t, 30*time.Second, func() error {
			for range 6 {
				code, body, err := httpGet(url)
				if err != nil || code != http.StatusOK || !strings.Contains(body, "hello from wasm "+greeting) {
					return fmt.Errorf("GET %s: %d %q %v", url, code, body, err)
				}
			}
			return nil
		})
	}
}
