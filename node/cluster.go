package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/replica"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Status reports this node's view of the cluster.
func (n *Node) Status(_ context.Context) (*clusterv1.StatusResponse, error) {
	r := n.raft.r
	_, leader := r.LeaderWithID()
	resp := &clusterv1.StatusResponse{
		NodeId:       n.cfg.ID,
		RaftState:    r.State().String(),
		LeaderId:     string(leader),
		AppliedIndex: r.AppliedIndex(),
		CommitIndex:  r.CommitIndex(),
		LastIndex:    r.LastIndex(),
		FsmIndex:     n.fsm.Store.Index(),
	}
	if leader != "" {
		resp.LeaderApiAddr = replicaPeers{n}.APIAddrOf(string(leader))
	}
	if lc := r.LastContact(); !lc.IsZero() {
		resp.LastContactMs = uint64(time.Since(lc).Milliseconds())
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("read configuration: %w", err))
	}
	for _, s := range f.Configuration().Servers {
		m := &clusterv1.Member{
			Id:       string(s.ID),
			RaftAddr: string(s.Address),
			Suffrage: strings.ToLower(s.Suffrage.String()), // voter, nonvoter, staging
			Leader:   s.ID == leader,
		}
		if nd, err := n.fsm.Store.Node(string(s.ID)); err == nil {
			m.ApiAddr, m.ProxyAddr = nd.ApiAddr, nd.ProxyAddr
			m.Status = nodeStatus(nd.Status)
		} else {
			m.ApiAddr = n.disc.apiAddr(string(s.ID))
		}
		resp.Members = append(resp.Members, m)
	}
	return resp, nil
}

func nodeStatus(s statev1.NodeStatus) string {
	if s == statev1.NodeStatus_NODE_STATUS_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "NODE_STATUS_"))
}

// LeaderAPIHeader carries the leader's API address on a Join refused by a follower, so the
// joining node asks the leader itself.
const LeaderAPIHeader = "V9-Leader-Api"

// Join adds a node to the Raft configuration and registers it. Only the node itself asks,
// with its own certificate (a manual one, or one issued for a join token), and only the
// leader answers: a follower never forwards a Join (it would vouch for the newcomer with
// its own certificate); it refuses with the leader's API address in LeaderAPIHeader.
func (n *Node) Join(ctx context.Context, req *clusterv1.JoinRequest) (uint64, error) {
	if err := auth.CallerIs(ctx, req.NodeId, "join"); err != nil {
		return 0, err
	}
	if !n.IsLeader() {
		addr, err := n.LeaderAPI()
		if err != nil {
			return 0, replica.ErrNoLeader
		}
		ce := connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s: join through the leader at %s", replica.NotLeaderMsg, addr))
		ce.Meta().Set(LeaderAPIHeader, addr)
		return 0, ce
	}
	return n.joinAsLeader(req)
}

func (n *Node) joinAsLeader(req *clusterv1.JoinRequest) (uint64, error) {
	r := n.raft.r
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return 0, leaderErr(err)
	}
	id, addr := raft.ServerID(req.NodeId), raft.ServerAddress(req.RaftAddr)
	member := false
	for _, s := range f.Configuration().Servers {
		switch {
		case s.ID == id && s.Address == addr:
			member = true
		case s.ID == id || s.Address == addr:
			// Same id at a new address, or a new id at an old address: replace the stale entry.
			if err := r.RemoveServer(s.ID, 0, 10*time.Second).Error(); err != nil {
				return 0, leaderErr(err)
			}
		}
	}
	if !member {
		if err := r.AddVoter(id, addr, 0, 10*time.Second).Error(); err != nil {
			return 0, leaderErr(err)
		}
		n.log.Info("added voter", "id", req.NodeId, "raft", req.RaftAddr)
	}
	cmd := &statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
		Id: req.NodeId, ApiAddr: req.ApiAddr, ProxyAddr: req.ProxyAddr, RaftAddr: req.RaftAddr, Runtimes: req.Runtimes,
	}}}}
	return n.ApplyLocal(context.Background(), cmd)
}

// RemovePeer removes a node from the Raft configuration and the state.
func (n *Node) RemovePeer(ctx context.Context, id string) (uint64, error) {
	return n.OnLeader(ctx, func() (uint64, error) { return n.removeAsLeader(id) },
		func(addr string) (uint64, error) {
			resp, err := n.peers.get(addr).cluster.RemovePeer(ctx, connect.NewRequest(&clusterv1.RemovePeerRequest{NodeId: id}))
			if err != nil {
				return 0, err
			}
			return resp.Msg.Index, nil
		})
}

func (n *Node) removeAsLeader(id string) (uint64, error) {
	r := n.raft.r
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return 0, leaderErr(err)
	}
	member := false
	for _, s := range f.Configuration().Servers {
		member = member || s.ID == raft.ServerID(id)
	}
	nd, nodeErr := n.fsm.Store.Node(id)
	if !member && nodeErr != nil {
		return 0, connect.NewError(connect.CodeNotFound, fmt.Errorf("node %q is not a member of this cluster", id))
	}
	if id == n.cfg.ID && member && len(f.Configuration().Servers) > 1 {
		// The leader leaves: it hands leadership over first (controllers stopped), the new
		// leader removes it (leaderCall forwards there): no Raft shut down under a live API.
		n.log.Info("removing this node, the leader: transferring leadership first")
		if err := n.owner.Handover(n.ctx, func() error { return r.LeadershipTransfer().Error() }); err != nil {
			return 0, leaderErr(err)
		}
		return 0, raft.ErrNotLeader
	}
	var idx uint64
	if nodeErr == nil && nd.Status != statev1.NodeStatus_NODE_STATUS_DOWN && n.holdsExclusive(id) {
		// Its exclusive instances may still run: refuse its heartbeats and wait out its
		// lease before they are declared lost and placed elsewhere.
		n.log.Info("removing a live node with exclusive instances: waiting out its lease", "id", id)
		ctx, cancel := context.WithTimeout(n.ctx, 4*n.cfg.Liveness.TTL+10*time.Second)
		done, err := n.live.Fence(ctx, id)
		cancel()
		if err != nil {
			return 0, leaderErr(err)
		}
		defer done()
	}
	// Out of Raft first: the leader then refuses its writes (it would register again).
	if member {
		rf := r.RemoveServer(raft.ServerID(id), 0, 10*time.Second)
		if err := rf.Error(); err != nil {
			return 0, leaderErr(err)
		}
		idx = rf.Index()
		n.log.Info("removed peer", "id", id)
	}
	if nodeErr == nil {
		cmd := &statev1.Command{Op: &statev1.Command_RemoveNode{RemoveNode: &statev1.RemoveNode{Id: id}}}
		i, err := n.ApplyLocal(context.Background(), cmd)
		if idx = max(idx, i); err != nil && !errors.Is(err, fsm.ErrNotFound) {
			return 0, err
		}
	}
	return idx, nil
}

// holdsExclusive reports whether node id has a placement of an exclusive component that
// may still run (not settled as stopped or lost).
func (n *Node) holdsExclusive(id string) bool {
	for _, p := range n.fsm.Store.Placements(id) {
		if p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST ||
			(p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_STOP && p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED) {
			continue
		}
		if c, err := n.fsm.Store.ComponentByID(p.ComponentId); err == nil && c.GetSpec().GetExclusive() {
			return true
		}
	}
	return false
}

// leaderErr maps a Raft membership error to what Apply retries or the user reads.
func leaderErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) {
		return err
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("membership change: %w", err))
}
