package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/keyring"
	"github.com/velocity9/v9/replica"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// The cluster keyring (package keyring): root keys live in each node's data dir
// (keyring.json, 0600) and move between nodes only through InternalService.Keys, which
// answers node certificates only.

func (n *Node) openKeyring() error {
	keys, err := keyring.Open(filepath.Join(n.cfg.DataDir, "keyring.json"))
	n.keys = &keyring.Cluster{Keys: keys, Peers: keyPeers{n}, Log: n.log}
	if err == nil && n.cfg.TLS != nil { // without mTLS, keys stay home (RootKeys)
		n.goLoop(n.keys.Run)
	}
	return err
}

// RootKeys serves InternalService.Keys.
func (n *Node) RootKeys(_ context.Context, create bool) (*clusterv1.KeysResponse, error) {
	if n.cfg.TLS == nil {
		// Without mTLS anyone reaching the port would pass as a node: keys stay home.
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("root keys move only between nodes over mutual TLS; this cluster runs --insecure-no-tls"))
	}
	set, err := n.keys.Share(create)
	if errors.Is(err, keyring.ErrNotLeader) {
		return nil, replica.NotLeader()
	} else if err != nil {
		return nil, err
	}
	return set.Proto(), nil
}

// SealSecret implements server.SecretBackend.
func (n *Node) SealSecret(ctx context.Context, componentID, name string, value []byte) (string, []byte, []byte, error) {
	return n.keys.SealSecret(ctx, componentID, name, value)
}

// OpenSecret implements dataplane.SecretOpener.
func (n *Node) OpenSecret(ctx context.Context, s *statev1.Secret) ([]byte, error) {
	return n.keys.OpenSecret(ctx, s)
}

// keyPeers implements keyring.Peers.
type keyPeers struct{ n *Node }

func (p keyPeers) IsLeader() bool             { return p.n.IsLeader() }
func (p keyPeers) LeaderAPI() (string, error) { return p.n.LeaderAPI() }

func (p keyPeers) OtherAPIs() []string {
	var addrs []string
	if a, err := p.n.LeaderAPI(); err == nil && a != p.n.APIAddr() {
		addrs = append(addrs, a)
	}
	for _, nd := range p.n.fsm.Store.Nodes() {
		if nd.Id != p.n.cfg.ID && nd.ApiAddr != "" {
			addrs = append(addrs, nd.ApiAddr)
		}
	}
	return addrs
}

func (p keyPeers) FetchKeys(ctx context.Context, addr string, create bool) (keyring.Set, error) {
	resp, err := p.n.peers.get(addr).internal.Keys(ctx, connect.NewRequest(&clusterv1.KeysRequest{Create: create}))
	if err != nil {
		return keyring.Set{}, err
	}
	return keyring.SetFromProto(resp.Msg), nil
}

// Keyring is this node's part of the cluster keyring (server.KeyringBackend).
func (n *Node) Keyring() *keyring.Cluster { return n.keys }

// KeyUses counts what each root key seals in the replicated state, read after catching up.
func (n *Node) KeyUses(ctx context.Context) (map[string]int, error) {
	if err := n.ConsistentBarrier(ctx); err != nil {
		return nil, err
	}
	return n.fsm.Store.KeyUses(), nil
}

// CallNode calls path on another node's API with this node's certificate.
func (n *Node) CallNode(ctx context.Context, addr, method, path string) error {
	req, err := http.NewRequestWithContext(ctx, method, n.peers.scheme+"://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := n.peers.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", method, addr, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
