package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/leader"
	"github.com/velocity9/v9/replica"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// HeartbeatAsLeader records a node's heartbeat on the leader.
func (n *Node) HeartbeatAsLeader(_ context.Context, req *clusterv1.HeartbeatRequest) (*clusterv1.HeartbeatResponse, error) {
	if !n.IsLeader() {
		return nil, replica.NotLeader()
	}
	if _, err := n.fsm.Store.Node(req.NodeId); err != nil {
		// A node removed from the state (or not yet registered) gets no answer, so its
		// lease runs out and it fences its exclusive instances.
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("node %q is not a member of this cluster", req.NodeId))
	}
	if err := n.live.Record(req); err != nil {
		switch {
		case errors.Is(err, leader.ErrNotLeading):
			return nil, replica.NotLeader()
		case errors.Is(err, leader.ErrMarkingDown):
			return nil, connect.NewError(connect.CodeUnavailable, err)
		}
		return nil, err
	}
	// The leader's last log index covers every entry a predecessor committed, which this
	// leader may not have applied yet: the node's lease waits until it has applied them.
	idx := max(n.fsm.Store.Index(), n.raft.r.LastIndex())
	return &clusterv1.HeartbeatResponse{LeaderId: n.cfg.ID, Index: idx}, nil
}

// Nodes lists the registered nodes. A follower asks the leader, which alone knows when each
// node last heartbeated; without a leader it answers from its own replica.
func (n *Node) Nodes(ctx context.Context) (*clusterv1.NodesResponse, error) {
	if !n.IsLeader() {
		if addr, err := n.LeaderAPI(); err == nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := n.peers.get(addr).cluster.Nodes(cctx, connect.NewRequest(&clusterv1.NodesRequest{}))
			cancel()
			if err == nil {
				return resp.Msg, nil
			}
			n.log.Debug("ask the leader for nodes", "err", err)
		}
	}
	s := n.fsm.Store.State()
	resp := &clusterv1.NodesResponse{}
	if n.IsLeader() {
		resp.LeaderId = n.cfg.ID
	}
	byNode := map[string]*clusterv1.NodeInfo{}
	for _, nd := range s.Nodes {
		info := &clusterv1.NodeInfo{Node: nd}
		if last, real := n.live.LastHeard(nd.Id); real && resp.LeaderId != "" {
			info.LastHeartbeat = timestamppb.New(last)
		}
		byNode[nd.Id] = info
		resp.Nodes = append(resp.Nodes, info)
	}
	for _, p := range s.Placements {
		if info := byNode[p.NodeId]; info != nil && p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
			info.Placements++
			if p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
				info.Running++
			}
		}
	}
	return resp, nil
}

// Drain marks a node draining (or ready again with undo). The scheduler moves its
// placements off, replacements first.
func (n *Node) Drain(ctx context.Context, id string, undo bool) (uint64, error) {
	nd, err := n.fsm.Store.Node(id)
	if err != nil {
		if errors.Is(err, fsm.ErrNotFound) {
			return 0, connect.NewError(connect.CodeNotFound, fmt.Errorf("no node %q (see v9 nodes list)", id))
		}
		return 0, err
	}
	to := statev1.NodeStatus_NODE_STATUS_DRAINING
	if undo {
		to = statev1.NodeStatus_NODE_STATUS_READY
	}
	if nd.Status == statev1.NodeStatus_NODE_STATUS_DOWN {
		return 0, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("node %q is down; its placements are being replaced already", id))
	}
	return n.Apply(ctx, &statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{Id: id, Status: to}}})
}
