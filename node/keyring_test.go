package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/velocity9/v9/keyring"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// The first root key, made by the leader when a secret is first sealed, reaches every node
// (keyring.Cluster.Run), also the nodes that never open a secret: losing one machine's data
// dir loses no key.
func TestFirstRootKeyReachesEveryNode(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.Leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keyID, _, _, err := leader.SealSecret(ctx, "c1", "DB_PASSWORD", []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, 15*time.Second, func() error {
		for _, n := range c.Nodes {
			if !n.Keyring().Keys.Has(keyID) {
				return fmt.Errorf("only some nodes hold root key %s, which seals a secret: %s does not", keyID, n.ID())
			}
		}
		return nil
	})
}

// docs/operating.md, "Backup and restore": a snapshot holds the secrets sealed and no root
// key. Restored into a new cluster, the secrets name keys no node holds: the keyring says so
// (Missing, shown by `keyring list` and after `snapshot restore`), and the old cluster's
// keyring.json, put into a node's data dir, makes them readable again.
func TestRestoreIntoNewClusterReportsMissingKeysUntilKeyringFileIsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := NewTestCluster(t, 1)
	n := old.Leader(t)
	c, err := createComponent(ctx, n, "db-user")
	if err != nil {
		t.Fatal(err)
	}
	keyID, nonce, ct, err := n.SealSecret(ctx, c.Component.Id, "DB_PASSWORD", []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_PutSecret{PutSecret: &statev1.PutSecret{
		Component: "db-user", Name: "DB_PASSWORD", KeyId: keyID, Nonce: nonce, Ciphertext: ct}}}); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := n.SnapshotSave(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	keyFile, err := os.ReadFile(filepath.Join(n.cfg.DataDir, "keyring.json")) // the operator's copy
	if err != nil {
		t.Fatal(err)
	}
	old.Stop(0)

	// Every node lost: a new cluster on empty data dirs, the snapshot restored into it.
	nc := NewTestCluster(t, 1)
	l := nc.Leader(t)
	if _, err := l.SnapshotRestore(ctx, &archive); err != nil {
		t.Fatalf("restore: %v", err)
	}
	uses, err := l.KeyUses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := l.Keyring().Missing(ctx, uses); m[keyID] != 1 || len(m) != 1 {
		t.Fatalf("after a restore without the old keyring, missing keys = %v, want %s sealing 1 value", m, keyID)
	}
	secrets := l.Store().Secrets(c.Component.Id)
	if len(secrets) != 1 {
		t.Fatalf("restored secrets of db-user: %v", secrets)
	}
	if _, err := l.OpenSecret(ctx, secrets[0]); !errors.Is(err, keyring.ErrNoKey) {
		t.Fatalf("open without the key: %v, want ErrNoKey", err)
	}

	// The operator puts the old keyring.json into the node's data dir and restarts it.
	nc.Stop(0)
	if err := os.WriteFile(filepath.Join(l.cfg.DataDir, "keyring.json"), keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	nc.Restart(0)
	l = nc.Leader(t)
	if uses, err = l.KeyUses(ctx); err != nil {
		t.Fatal(err)
	}
	if m := l.Keyring().Missing(ctx, uses); len(m) != 0 {
		t.Fatalf("missing keys with the old keyring back: %v", m)
	}
	secrets = l.Store().Secrets(c.Component.Id)
	if len(secrets) != 1 {
		t.Fatalf("secrets of db-user after the restart: %v", secrets)
	}
	got, err := l.OpenSecret(ctx, secrets[0])
	if err != nil || string(got) != "hunter2" {
		t.Fatalf("with the old keyring back, secret DB_PASSWORD = %q, %v", got, err)
	}
}
