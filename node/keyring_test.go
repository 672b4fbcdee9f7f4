package node

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The first root key is made by the leader when a secret is first sealed, and a rotation
// pushes the new key to every node; but the first key is pushed nowhere. The nodes that
// never need to open a secret (no placement of a component with secrets) never fetch it, so
// a secret committed to a three-node Raft log may be readable with a key that exists on one
// machine only: losing that machine's data dir loses every secret, though the state that
// holds them survives on the others.
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
