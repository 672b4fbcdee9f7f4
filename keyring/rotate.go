package keyring

import (
	"context"
	"fmt"
	"time"
)

// Rotate makes a new root key the active one on this node and has every other node pull
// it (sync, over mTLS): new secrets are sealed with it from then on, while the old keys stay
// for reading what they sealed (a secret is sealed again with the new key when it is next
// written). It returns the new key's id and the nodes that could not be reached: they
// take the key the next time they fetch keys (before sealing, and for any key they lack).
//
// It first takes the keys of every node it reaches, so that the new key is later than every
// key of the cluster (NewActive) and becomes the active key on every node, whatever their
// clocks say.
func (c *Cluster) Rotate(ctx context.Context, sync func(ctx context.Context, addr string) error) (string, []string, error) {
	for _, addr := range others(c.Peers) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := c.fetch(cctx, addr, false); err != nil {
			c.Log.Debug("keyring: take keys before rotating", "peer", addr, "err", err)
		}
		cancel()
	}
	c.mu.Lock()
	k, err := c.Keys.NewActive(time.Now())
	c.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	c.Log.Info("keyring: rotated: new active root key", "key_id", k.ID)
	var missed []string
	for _, addr := range others(c.Peers) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := sync(cctx, addr)
		cancel()
		if err != nil {
			c.Log.Warn("keyring: a node did not take the new key", "peer", addr, "err", err)
			missed = append(missed, addr)
		}
	}
	return k.ID, missed, nil
}

// Pull takes the keys of the node at addr (after a rotation there); the active key moves
// only to a newer one.
func (c *Cluster) Pull(ctx context.Context, addr string) error {
	if err := c.fetch(ctx, addr, false); err != nil {
		return fmt.Errorf("keyring: pull keys from %s: %w", addr, err)
	}
	return nil
}
