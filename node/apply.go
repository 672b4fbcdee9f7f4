package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/fsm"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

const (
	raftLeader = raft.Leader
	// defaultWriteTimeout bounds a write whose caller set no deadline.
	defaultWriteTimeout = 30 * time.Second
	notLeaderMsg        = "this node is not the leader"
)

var errNoLeader = connect.NewError(connect.CodeUnavailable,
	errors.New("no cluster leader: the cluster is electing one or has lost quorum (fewer than half of its voters reachable); retry in a few seconds"))

// Apply commits cmd through the Raft leader: locally when this node leads, forwarded to the
// leader otherwise. It returns the command's log index, or the error Apply gave (a domain
// error from fsm, or a Connect error).
func (n *Node) Apply(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	if cmd.Actor == "" {
		cmd.Actor = auth.ActorFrom(ctx) // who asked, from the API call this write serves
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWriteTimeout)
		defer cancel()
	}
	backoff := 10 * time.Millisecond
	for {
		var idx uint64
		var err error
		if n.IsLeader() {
			idx, err = n.applyLocal(ctx, cmd)
		} else {
			idx, err = n.forwardApply(ctx, cmd)
		}
		if !retryable(err) {
			return idx, err
		}
		select {
		case <-ctx.Done():
			if errors.Is(err, errLeaderUnknown) {
				return 0, errNoLeader
			}
			return 0, connect.NewError(connect.CodeUnavailable, fmt.Errorf("write not committed: %w", err))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

var errLeaderUnknown = errors.New("leader unknown")

// retryable reports errors after which the command was certainly not applied.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, errLeaderUnknown) {
		return true
	}
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Code() == connect.CodeFailedPrecondition && ce.Message() == notLeaderMsg {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (n *Node) forwardApply(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	addr, err := n.leaderAPI()
	if err != nil {
		return 0, err
	}
	resp, err := n.peers.get(addr).internal.Apply(ctx, connect.NewRequest(&clusterv1.ApplyRequest{Command: cmd}))
	if err != nil {
		return 0, err
	}
	return resp.Msg.Index, nil
}

// ApplyAsLeader commits a forwarded command; it never forwards again.
func (n *Node) ApplyAsLeader(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	if !n.IsLeader() {
		return 0, connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
	}
	idx, err := n.applyLocal(ctx, cmd)
	if errors.Is(err, raft.ErrNotLeader) {
		return 0, connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
	}
	return idx, err
}

// applyLocal stamps cmd with the leader's clock and ids, commits it, and checks both the
// future's error and the FSM's response (Consul and Nomad both shipped bugs checking one).
func (n *Node) applyLocal(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	stamp(cmd)
	b, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return 0, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("encode command: %w", err))
	}
	timeout := defaultWriteTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.r.Apply(b, timeout)
	return n.result(f)
}

func (n *Node) result(f raft.ApplyFuture) (uint64, error) {
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return 0, err
		case errors.Is(err, raft.ErrLeadershipLost):
			return 0, connect.NewError(connect.CodeUnavailable, errors.New("leadership was lost while committing: the write may or may not have been applied; read before retrying"))
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return 0, connect.NewError(connect.CodeUnavailable, errors.New("the leader is overloaded: write timed out before it was sent"))
		case errors.Is(err, raft.ErrRaftShutdown):
			return 0, connect.NewError(connect.CodeUnavailable, errors.New("this node is shutting down"))
		}
		return 0, connect.NewError(connect.CodeUnavailable, fmt.Errorf("commit: %w", err))
	}
	res, ok := f.Response().(*fsm.Result)
	if !ok {
		return 0, connect.NewError(connect.CodeInternal, fmt.Errorf("unexpected apply response %T", f.Response()))
	}
	return res.Index, res.Err
}

// stamp sets what only the leader may decide: the time, and ids of new entities.
func stamp(cmd *statev1.Command) {
	cmd.Time = timestamppb.Now()
	switch op := cmd.Op.(type) {
	case *statev1.Command_CreateComponent:
		if c := op.CreateComponent.GetComponent(); c != nil && c.Id == "" {
			c.Id = newID()
		}
	case *statev1.Command_CreateDeployment:
		if d := op.CreateDeployment.GetDeployment(); d != nil && d.Id == "" {
			d.Id = newID()
		}
	}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// leaderAPI returns the API address of the current leader, or errLeaderUnknown.
func (n *Node) leaderAPI() (string, error) {
	_, id := n.raft.r.LeaderWithID()
	if id == "" {
		return "", errLeaderUnknown
	}
	if a := n.apiAddrOf(string(id)); a != "" {
		return a, nil
	}
	return "", fmt.Errorf("%w: no API address known for leader %s", errLeaderUnknown, id)
}

// apiAddrOf finds a node's API address in the replicated state, else from discovery.
func (n *Node) apiAddrOf(id string) string {
	if id == n.cfg.ID {
		return n.APIAddr()
	}
	if nd, err := n.fsm.Store.Node(id); err == nil {
		return nd.ApiAddr
	}
	return n.disc.apiAddr(id)
}

// ReadIndex serves a follower's consistent read: it commits a barrier (which proves
// leadership to a quorum and applies every earlier write) and returns the applied index.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if !n.IsLeader() {
		return 0, connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
	}
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := n.raft.r.Barrier(timeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
		}
		return 0, connect.NewError(connect.CodeUnavailable, fmt.Errorf("read barrier: %w", err))
	}
	return n.raft.r.AppliedIndex(), nil
}

// ConsistentBarrier returns once this node has applied every write committed before the
// call, as confirmed by the leader.
func (n *Node) ConsistentBarrier(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	for {
		var idx uint64
		var err error
		if n.IsLeader() {
			idx, err = n.ReadIndex(ctx)
		} else if addr, lerr := n.leaderAPI(); lerr != nil {
			err = lerr
		} else {
			var resp *connect.Response[clusterv1.ReadIndexResponse]
			resp, err = n.peers.get(addr).internal.ReadIndex(ctx, connect.NewRequest(&clusterv1.ReadIndexRequest{}))
			if err == nil {
				idx = resp.Msg.Index
			}
		}
		if err == nil {
			return n.waitApplied(ctx, idx)
		}
		if !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errNoLeader
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitApplied waits until Raft has applied idx on this node.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for n.raft.r.AppliedIndex() < idx {
		select {
		case <-ctx.Done():
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("this node has not caught up with the leader (applied %d of %d)", n.raft.r.AppliedIndex(), idx))
		case <-t.C:
		}
	}
	return nil
}
