package keyring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Peers is what the cluster keyring needs of the cluster; node implements it over mTLS.
type Peers interface {
	IsLeader() bool
	// LeaderAPI returns the leader's API address.
	LeaderAPI() (string, error)
	// OtherAPIs returns the API addresses of the other nodes, the leader's first.
	OtherAPIs() []string
	// FetchKeys asks the node at addr for what it shares of its keyring (Cluster.Share);
	// with create, the leader makes the first key if it has none.
	FetchKeys(ctx context.Context, addr string, create bool) (Set, error)
}

// ErrNotLeader is Share's answer on a follower asked to create the first key.
var ErrNotLeader = errors.New("keyring: only the leader creates the first root key")

// Cluster is one node's part of the cluster keyring: the leader makes the first key when a
// secret is first sealed; a node that lacks a key asks the leader, then every other node.
// Key material never enters a Raft command.
type Cluster struct {
	Keys  *Keyring
	Peers Peers
	Log   *slog.Logger

	mu sync.Mutex // serialises root key creation
}

// Share returns the keys this node holds and the removed keys' ids, for a peer that asks
// (InternalService.Keys). With create, the leader first makes a key if the cluster has none.
func (c *Cluster) Share(create bool) (Set, error) {
	if create && c.Keys.Active() == "" {
		if !c.Peers.IsLeader() {
			return Set{}, ErrNotLeader
		}
		if err := c.create(); err != nil {
			return Set{}, err
		}
	}
	return c.Keys.Share(), nil
}

func (c *Cluster) create() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Keys.Active() != "" {
		return nil
	}
	k, err := c.Keys.NewActive(time.Now())
	if err != nil {
		return err
	}
	// The other nodes take it at their next sync (Run).
	c.Log.Info("keyring: created root key", "key_id", k.ID)
	return nil
}

func (c *Cluster) fetch(ctx context.Context, addr string, create bool) error {
	s, err := c.Peers.FetchKeys(ctx, addr, create)
	if err != nil {
		return err
	}
	return c.Keys.Merge(s)
}

// ensureSealKey makes sure this node holds the cluster's active key. A follower asks the
// leader each time (sealing is rare), so a rotation it missed is picked up; if the leader
// does not answer, a key it already holds will do.
func (c *Cluster) ensureSealKey(ctx context.Context) error {
	if c.Peers.IsLeader() {
		if c.Keys.Active() != "" {
			return nil
		}
		return c.create()
	}
	addr, err := c.Peers.LeaderAPI()
	if err != nil {
		if c.Keys.Active() != "" {
			return nil
		}
		return err
	}
	if c.Keys.Active() != "" {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := c.fetch(cctx, addr, false); err != nil {
			c.Log.Debug("keyring: refresh keys from the leader", "err", err)
		}
		return nil
	}
	if err := c.fetch(ctx, addr, true); err != nil {
		return fmt.Errorf("keyring: fetch keys from the leader: %w", err)
	}
	if c.Keys.Active() == "" {
		return errors.New("keyring: the leader holds no root key")
	}
	return nil
}

// secretAAD binds a sealed secret to its component and name: moved elsewhere in the state,
// it no longer opens.
func secretAAD(componentID, name string) []byte { return []byte(componentID + "/" + name) }

// SealSecret seals a component's secret with the cluster's active key (server.SecretBackend).
func (c *Cluster) SealSecret(ctx context.Context, componentID, name string, value []byte) (string, []byte, []byte, error) {
	if err := c.ensureSealKey(ctx); err != nil {
		return "", nil, nil, err
	}
	s, err := c.Keys.Seal(value, secretAAD(componentID, name))
	if err != nil {
		return "", nil, nil, err
	}
	return s.KeyID, s.Nonce, s.Ciphertext, nil
}

// OpenSecret opens a sealed secret (dataplane.SecretOpener), fetching a key this node lacks
// from the leader, then from the other nodes.
func (c *Cluster) OpenSecret(ctx context.Context, s *statev1.Secret) ([]byte, error) {
	if !c.Keys.Has(s.KeyId) {
		c.find(ctx, s.KeyId)
	}
	return c.Keys.Open(Sealed{KeyID: s.KeyId, Nonce: s.Nonce, Ciphertext: s.Ciphertext}, secretAAD(s.ComponentId, s.Name))
}

func (c *Cluster) find(ctx context.Context, id string) {
	for _, a := range others(c.Peers) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.fetch(cctx, a, false)
		cancel()
		if err != nil {
			c.Log.Debug("keyring: fetch keys", "peer", a, "err", err)
			continue
		}
		if c.Keys.Has(id) {
			return
		}
	}
}
