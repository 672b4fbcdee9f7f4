package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// docs/operating.md, "Backup and restore": to recover from the loss of the cluster, start a
// new one and restore the snapshot into it, and "the components come back". The snapshot
// holds the secrets sealed, but no root key (by design), and no command exports or imports
// the keyring: on the new cluster every secret names a key no node holds, so every
// component with a secret fails to start "unreadable", and the secrets are gone for good.
// The restore neither warns nor refuses.
func TestRev3RestoreIntoNewClusterKeepsSecretsReadable(t *testing.T) {
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
	old.Stop(0)

	// Every node lost: a new cluster on empty data dirs, the snapshot restored into it.
	nc := NewTestCluster(t, 1)
	l := nc.Leader(t)
	if _, err := l.SnapshotRestore(ctx, &archive); err != nil {
		t.Fatalf("restore: %v", err)
	}
	secrets := l.Store().Secrets(c.Component.Id)
	if len(secrets) != 1 {
		t.Fatalf("restored secrets of db-user: %v", secrets)
	}
	got, err := l.OpenSecret(ctx, secrets[0])
	if err != nil || string(got) != "hunter2" {
		t.Fatalf("after restoring the backup into a new cluster as docs/operating.md says, secret DB_PASSWORD = %q, %v", got, err)
	}
}
