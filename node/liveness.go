package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// liveness is the leader's soft state about the nodes: when it last heard each one and what
// load and artifacts each reported. None of it enters the Raft log (only the decisions it
// leads to do). A new leader starts it afresh, counting every node as heard at the moment
// it took over, so no node is declared down before a full TTL under the new leader.
type liveness struct {
	mu        sync.Mutex
	since     time.Time            // when this node became leader; zero while it does not lead
	heard     map[string]time.Time // real heartbeats received while leading
	downing   map[string]bool      // nodes being marked down: their heartbeats are refused
	load      map[string][]*clusterv1.ComponentLoad
	artifacts map[string]map[string]bool
}

// reset starts a new term of leadership at now (or ends it, with a zero time).
func (l *liveness) reset(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = now
	l.heard = map[string]time.Time{}
	l.downing = map[string]bool{}
	l.load = map[string][]*clusterv1.ComponentLoad{}
	l.artifacts = map[string]map[string]bool{}
}

func (l *liveness) record(req *clusterv1.HeartbeatRequest, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.since.IsZero() {
		return connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
	}
	if l.downing[req.NodeId] {
		// Answering now would renew the node's lease with a state that does not hold the
		// decision yet; once it is committed, the next heartbeat brings the node back.
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("node %s is being marked down", req.NodeId))
	}
	l.heard[req.NodeId] = now
	l.load[req.NodeId] = req.Load
	arts := make(map[string]bool, len(req.Artifacts))
	for _, a := range req.Artifacts {
		arts[a] = true
	}
	l.artifacts[req.NodeId] = arts
	return nil
}

// markIfSilent decides, atomically with heartbeat intake, whether a node has been silent
// for longer than ttl; if so its heartbeats are refused until done is called.
func (l *liveness) markIfSilent(id string, now time.Time, ttl time.Duration) (done func(), silent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, ok := l.heard[id]
	if !ok {
		last = l.since
	}
	if l.since.IsZero() || now.Sub(last) <= ttl {
		return nil, false
	}
	l.downing[id] = true
	return func() {
		l.mu.Lock()
		delete(l.downing, id)
		l.mu.Unlock()
	}, true
}

// leaderSince is when this node became leader (zero while it does not lead).
func (l *liveness) leaderSince() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.since
}

// lastHeard is when the leader last heard the node (the leadership start if never) and
// whether that was a real heartbeat.
func (l *liveness) lastHeard(id string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.heard[id]; ok {
		return t, true
	}
	return l.since, false
}

// artifactHints returns what each node reported holding, for the scheduler.
func (l *liveness) artifactHints() map[string]map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.artifacts) // the inner maps are replaced, never changed
}

// HeartbeatAsLeader records a node's heartbeat on the leader.
func (n *Node) HeartbeatAsLeader(_ context.Context, req *clusterv1.HeartbeatRequest) (*clusterv1.HeartbeatResponse, error) {
	if !n.IsLeader() {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
	}
	if err := n.live.record(req, time.Now()); err != nil {
		return nil, err
	}
	// The leader's last log index covers every entry a predecessor committed, which this
	// leader may not have applied yet: the node's lease waits until it has applied them.
	idx := max(n.fsm.Store.Index(), n.raft.r.LastIndex())
	return &clusterv1.HeartbeatResponse{LeaderId: n.cfg.ID, Index: idx}, nil
}

// livenessLoop runs on every node and acts while it leads: a ready or draining node not
// heard for TTL is marked DOWN (the fsm marks its placements LOST, the scheduler replaces
// them); a down node heard again is marked READY.
func (n *Node) livenessLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.Liveness.HeartbeatInterval)
	defer t.Stop()
	leading := false
	for tick := 0; ; tick++ {
		switch now := time.Now(); {
		case n.IsLeader() && !leading:
			leading = true
			n.live.reset(now)
			n.rollouts.since, n.scaled, n.loadWin = nil, nil, loadWindow{}
		case !n.IsLeader() && leading:
			leading = false
			n.live.reset(time.Time{})
		case leading:
			n.checkNodes(ctx, now)
			if tick%4 == 0 { // these read the whole state: a few times a second is plenty
				n.checkRollouts(ctx, now)
				n.autoscale(ctx, now)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) checkNodes(ctx context.Context, now time.Time) {
	ttl := n.cfg.Liveness.TTL
	for _, nd := range n.fsm.Store.Nodes() {
		var to statev1.NodeStatus
		var done func()
		switch {
		case nd.Status != statev1.NodeStatus_NODE_STATUS_DOWN:
			var silent bool
			if done, silent = n.live.markIfSilent(nd.Id, now, ttl); !silent {
				continue
			}
			to = statev1.NodeStatus_NODE_STATUS_DOWN
			n.log.Warn("node missed its heartbeats: marking it down", "peer", nd.Id, "ttl", ttl)
		default:
			last, real := n.live.lastHeard(nd.Id)
			if !real || now.Sub(last) > ttl {
				continue
			}
			to = statev1.NodeStatus_NODE_STATUS_READY
			if nd.Drain {
				to = statev1.NodeStatus_NODE_STATUS_DRAINING // the operator's drain still holds
			}
			n.log.Info("node is back", "peer", nd.Id, "status", to)
		}
		// Only as leader, never forwarded: a deposed leader's view of heartbeats is stale.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := n.ApplyAsLeader(cctx, &statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{Id: nd.Id, Status: to}}})
		cancel()
		if done != nil {
			done()
		}
		if err != nil {
			n.log.Warn("set node status", "peer", nd.Id, "status", to, "err", err)
		}
	}
}

// Nodes lists the registered nodes. A follower asks the leader, which alone knows when each
// node last heartbeated; without a leader it answers from its own replica.
func (n *Node) Nodes(ctx context.Context) (*clusterv1.NodesResponse, error) {
	if !n.IsLeader() {
		if addr, err := n.leaderAPI(); err == nil {
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
		if last, real := n.live.lastHeard(nd.Id); real && resp.LeaderId != "" {
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
