package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/keyring"
	"github.com/velocity9/v9/replica"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// The cluster keyring: root keys live in each node's data dir (keyring.json, 0600) and move
// between nodes only through InternalService.Keys, which answers node certificates only.
// The leader makes the first key when a secret is first set; a node that lacks a key asks
// the leader, then every other node. Key material never enters a Raft command.

func openKeyring(dataDir string) (*keyring.Keyring, error) {
	return keyring.Open(filepath.Join(dataDir, "keyring.json"))
}

// secretAAD binds a sealed secret to its component and name: moved elsewhere in the state,
// it no longer opens.
func secretAAD(componentID, name string) []byte { return []byte(componentID + "/" + name) }

// RootKeys serves InternalService.Keys.
func (n *Node) RootKeys(_ context.Context, create bool) (*clusterv1.KeysResponse, error) {
	if n.cfg.TLS == nil {
		// Without mTLS anyone reaching the port would pass as a node: keys stay home.
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("root keys move only between nodes over mutual TLS; this cluster runs --insecure-no-tls"))
	}
	if create && n.keys.Active() == "" {
		if !n.IsLeader() {
			return nil, replica.NotLeader()
		}
		if err := n.createRootKey(); err != nil {
			return nil, err
		}
	}
	keys, active := n.keys.Keys()
	resp := &clusterv1.KeysResponse{ActiveId: active}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, &clusterv1.RootKey{Id: k.ID, Key: k.Key, CreateTime: timestamppb.New(k.Created)})
	}
	return resp, nil
}

func (n *Node) createRootKey() error {
	n.keyMu.Lock()
	defer n.keyMu.Unlock()
	if n.keys.Active() != "" {
		return nil
	}
	k, err := keyring.Generate(time.Now())
	if err != nil {
		return err
	}
	if err := n.keys.Add([]keyring.Key{k}, k.ID); err != nil {
		return err
	}
	n.log.Info("keyring: created root key", "key_id", k.ID)
	return nil
}

// fetchKeys asks addr for its root keys and keeps them.
func (n *Node) fetchKeys(ctx context.Context, addr string, create bool) error {
	resp, err := n.peers.get(addr).internal.Keys(ctx, connect.NewRequest(&clusterv1.KeysRequest{Create: create}))
	if err != nil {
		return err
	}
	var keys []keyring.Key
	for _, k := range resp.Msg.Keys {
		keys = append(keys, keyring.Key{ID: k.Id, Key: k.Key, Created: k.CreateTime.AsTime()})
	}
	return n.keys.Add(keys, resp.Msg.ActiveId)
}

// ensureSealKey makes sure this node holds the cluster's active key.
func (n *Node) ensureSealKey(ctx context.Context) error {
	if n.keys.Active() != "" {
		return nil
	}
	if n.IsLeader() {
		return n.createRootKey()
	}
	addr, err := n.LeaderAPI()
	if err != nil {
		return err
	}
	if err := n.fetchKeys(ctx, addr, true); err != nil {
		return fmt.Errorf("keyring: fetch keys from the leader: %w", err)
	}
	if n.keys.Active() == "" {
		return errors.New("keyring: the leader holds no root key")
	}
	return nil
}

// SealSecret implements server.SecretBackend.
func (n *Node) SealSecret(ctx context.Context, componentID, name string, value []byte) (string, []byte, []byte, error) {
	if err := n.ensureSealKey(ctx); err != nil {
		return "", nil, nil, err
	}
	s, err := n.keys.Seal(value, secretAAD(componentID, name))
	if err != nil {
		return "", nil, nil, err
	}
	return s.KeyID, s.Nonce, s.Ciphertext, nil
}

// OpenSecret implements dataplane.SecretOpener: it fetches a key this node lacks from the
// leader, then from the other nodes, over mTLS.
func (n *Node) OpenSecret(ctx context.Context, s *statev1.Secret) ([]byte, error) {
	sealed := keyring.Sealed{KeyID: s.KeyId, Nonce: s.Nonce, Ciphertext: s.Ciphertext}
	aad := secretAAD(s.ComponentId, s.Name)
	if !n.keys.Has(s.KeyId) {
		n.findKey(ctx, s.KeyId)
	}
	return n.keys.Open(sealed, aad)
}

func (n *Node) findKey(ctx context.Context, id string) {
	var addrs []string
	if a, err := n.LeaderAPI(); err == nil && a != n.APIAddr() {
		addrs = append(addrs, a)
	}
	for _, nd := range n.fsm.Store.Nodes() {
		if nd.Id != n.cfg.ID && nd.ApiAddr != "" {
			addrs = append(addrs, nd.ApiAddr)
		}
	}
	for _, a := range addrs {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.fetchKeys(cctx, a, false)
		cancel()
		if err != nil {
			n.log.Debug("keyring: fetch keys", "peer", a, "err", err)
			continue
		}
		if n.keys.Has(id) {
			return
		}
	}
}
