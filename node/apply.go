package node

import (
	"context"
	"fmt"
	"strconv"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/replica"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// The write and read paths are package replica's (embedded in Node); node gives it the
// peers to forward to (replica.Peers) and checks who may apply a forwarded write.

// ApplyResultAsLeader commits a forwarded write on this node as the leader (see
// replica.Replica.ApplyResultAsLeader), after the checks of forwardedMayApply.
func (n *Node) ApplyResultAsLeader(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error) {
	if !n.IsLeader() {
		return nil, replica.NotLeader()
	}
	if err := n.forwardedMayApply(ctx, cmd); err != nil {
		return nil, err
	}
	return n.Replica.ApplyResultAsLeader(ctx, cmd)
}

// forwardedMayApply checks a command another node forwarded (auth.CheckForwarded): the
// original caller's credentials, passed on by the forwarding node, are authenticated again
// here and need the role the command's kind asks; a node alone writes only on its own
// account. Local calls (no peer certificate) are not checked: the API handler did.
func (n *Node) forwardedMayApply(ctx context.Context, cmd *statev1.Command) error {
	peer := auth.PeerNode(ctx)
	if peer == "" {
		return nil
	}
	p, err := n.authz.ForwardedPrincipal(ctx)
	if err != nil {
		return err
	}
	if err := auth.CheckForwarded(cmd, peer, p, n.fsm.Store); err != nil {
		return err
	}
	if p == nil && cmd.GetCreateApiToken() != nil {
		if err := n.cfg.SignIn.VouchSignIn(ctx, cmd, peer); err != nil {
			return err
		}
	}
	if reg := cmd.GetRegisterNode(); reg != nil && p == nil {
		if err := auth.CallerIs(ctx, reg.GetNode().GetId(), "registration"); err != nil {
			return err
		}
	}
	return n.observerIsCaller(ctx, cmd)
}

// observerIsCaller refuses an observed-state report of a placement that is not on the
// calling node: only a placement's own node reports what runs there, and sends the report
// straight to the leader with its own certificate (a forwarded write is never forwarded
// again). Local calls (no peer certificate) are not checked.
func (n *Node) observerIsCaller(ctx context.Context, cmd *statev1.Command) error {
	obs := cmd.GetSetPlacementObserved()
	peer := auth.PeerNode(ctx)
	if obs == nil || peer == "" {
		return nil
	}
	for _, p := range n.fsm.Store.Placements(peer) {
		if p.Id == obs.Id {
			return nil
		}
	}
	owner := "no node"
	for _, p := range n.fsm.Store.Placements("") {
		if p.Id == obs.Id {
			owner = strconv.Quote(p.NodeId)
		}
	}
	return connect.NewError(connect.CodePermissionDenied, fmt.Errorf(
		"observed state of placement %s refused: it is on %s, the caller's certificate names node %q", obs.Id, owner, peer))
}

// replicaPeers implements replica.Peers with the node's API clients.
type replicaPeers struct{ n *Node }

// APIAddrOf finds a node's API address in the replicated state, else from discovery.
func (p replicaPeers) APIAddrOf(id string) string {
	if id == p.n.cfg.ID {
		return p.n.APIAddr()
	}
	if nd, err := p.n.fsm.Store.Node(id); err == nil {
		return nd.ApiAddr
	}
	return p.n.disc.apiAddr(id)
}

func (p replicaPeers) ForwardApply(ctx context.Context, addr string, cmd *statev1.Command) (*fsm.Result, error) {
	resp, err := p.n.peers.get(addr).internal.Apply(ctx, connect.NewRequest(&clusterv1.ApplyRequest{Command: cmd}))
	if err != nil {
		return nil, err
	}
	return &fsm.Result{Index: resp.Msg.Index, Component: resp.Msg.Component}, nil
}

func (p replicaPeers) ForwardReadIndex(ctx context.Context, addr string) (uint64, error) {
	resp, err := p.n.peers.get(addr).internal.ReadIndex(ctx, connect.NewRequest(&clusterv1.ReadIndexRequest{}))
	if err != nil {
		return 0, err
	}
	return resp.Msg.Index, nil
}
