package node

import (
	"context"
	"errors"
	"github.com/velocity9/v9/internal/tick"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/auth"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// ACLBootstrapped reports whether the cluster's first token exists (local replica).
func (n *Node) ACLBootstrapped() bool { return n.fsm.Store.ACLBootstrapped() }

// Tokens lists every token of the local replica, hashes included.
func (n *Node) Tokens() []*statev1.ApiToken { return n.fsm.Store.Tokens() }

// Token returns one token of the local replica.
func (n *Node) Token(id string) (*statev1.ApiToken, error) { return n.fsm.Store.Token(id) }

// Audit returns the last limit audit entries of the local replica.
func (n *Node) Audit(limit int) []*statev1.AuditEntry { return n.fsm.Store.Audit(limit) }

// GitHubSignIn is how users sign in with GitHub on this cluster.
func (n *Node) GitHubSignIn() *auth.GitHubConfig { return &n.cfg.SignIn }

// WaitIndex waits until this node's replica has applied idx.
func (n *Node) WaitIndex(ctx context.Context, idx uint64) error {
	_, err := n.fsm.Store.WaitForIndex(ctx, idx)
	return err
}

// Bootstrap creates the cluster's first (admin) token with the given secret, as `v9 acl
// bootstrap` does: for v9 dev and the test cluster, which choose the secret.
func (n *Node) Bootstrap(ctx context.Context, secret string) error {
	k := &statev1.ApiToken{Id: auth.NewAccessorID(), Name: "bootstrap", Role: auth.RoleAdmin.String(), Sha256: auth.Hash(secret)}
	_, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_AclBootstrap{AclBootstrap: &statev1.AclBootstrap{Token: k}}})
	return err
}

// tokenUseLoop records, about once a minute, which tokens this node saw in use.
func (n *Node) tokenUseLoop(ctx context.Context) {
	tick.Every(ctx, auth.UseInterval/2, func() { n.recordTokenUse(ctx) })
}

// recordTokenUse commits the token uses seen since the last call, if any.
func (n *Node) recordTokenUse(ctx context.Context) {
	used := n.authz.TakeUsed()
	if len(used) == 0 {
		return
	}
	op := &statev1.TouchApiTokens{LastUsed: map[string]*timestamppb.Timestamp{}}
	for id, at := range used {
		op.LastUsed[id] = timestamppb.New(at)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := n.Apply(cctx, &statev1.Command{Op: &statev1.Command_TouchApiTokens{TouchApiTokens: op}}); err != nil {
		n.log.Debug("record token use", "err", err)
	}
}

// ClusterCA is the cluster CA certificate (PEM) this node trusts.
func (n *Node) ClusterCA() ([]byte, error) {
	if n.cfg.TLS == nil {
		return nil, errors.New("this node runs without TLS (--insecure-no-tls)")
	}
	return n.cfg.TLS.CAPEM()
}

// joinIssuer signs node certificates for join tokens when this node holds the CA key.
func (n *Node) joinIssuer() *auth.JoinIssuer {
	return &auth.JoinIssuer{
		Tokens: n.fsm.Store, CatchUp: n.authz.CatchUp, CADir: n.cfg.TLS.CADir(), Node: n.cfg.ID, Log: n.log,
		Consume: func(ctx context.Context, id string) error {
			_, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_RevokeApiToken{RevokeApiToken: &statev1.RevokeApiToken{Id: id}}})
			return err
		},
		Member: func(id string) bool {
			_, err := n.fsm.Store.Node(id)
			return err == nil || n.IsMember(id)
		},
	}
}

// IsMember reports whether id is in this node's Raft configuration (any suffrage).
func (n *Node) IsMember(id string) bool {
	f := n.raft.r.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return true
		}
	}
	return false
}
