package node

import (
	"context"

	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/id"
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

// What a failed write tells its caller (docs/architecture.md, "Writes"). Every error of a
// write that may have reached the Raft log says maybeApplied; one that certainly did not
// says notApplied, and retrying it is safe. Domain errors (NotFound, AlreadyExists,
// InvalidArgument, ...) are the command's own result: it was applied and changed nothing.
const (
	notApplied   = "the write was not applied"
	maybeApplied = "the write may or may not have been applied; read before retrying"
)

var errNoLeaderWrite = connect.NewError(connect.CodeUnavailable,
	errors.New("no cluster leader: the cluster is electing one or has lost quorum (fewer than half of its voters reachable); "+notApplied+"; retry in a few seconds"))

// Apply commits cmd through the Raft leader: locally when this node leads, forwarded to the
// leader otherwise. It returns the command's log index, or the error Apply gave (a domain
// error from fsm, or a Connect error worded as above).
func (n *Node) Apply(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	res, err := n.ApplyResult(ctx, cmd)
	if err != nil {
		return 0, err
	}
	return res.Index, nil
}

// ApplyResult is Apply returning the FSM's result: the index and the component the command
// wrote as it stood right after the command applied, so a handler answers from the write
// itself and never from a later read that a concurrent write may have changed. The
// result's Err is always nil: a domain error is returned as the error.
func (n *Node) ApplyResult(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error) {
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
		if ctx.Err() != nil {
			return nil, connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("%s: %w", notApplied, ctx.Err()))
		}
		var res *fsm.Result
		var err error
		if n.IsLeader() {
			res, err = n.applyLocalResult(ctx, cmd)
		} else {
			res, err = n.forwardApply(ctx, cmd)
		}
		if !retryable(err) {
			return res, err
		}
		select {
		case <-ctx.Done():
			if errors.Is(err, errLeaderUnknown) {
				return nil, errNoLeaderWrite
			}
			return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: %w", notApplied, err))
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

func (n *Node) forwardApply(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error) {
	addr, err := n.leaderAPI()
	if err != nil {
		return nil, err
	}
	resp, err := n.peers.get(addr).internal.Apply(ctx, connect.NewRequest(&clusterv1.ApplyRequest{Command: cmd}))
	if err != nil {
		return nil, forwardError(ctx, err)
	}
	return &fsm.Result{Index: resp.Msg.Index, Component: resp.Msg.Component}, nil
}

// forwardError words the failure of a forwarded write for the caller. The leader's own
// answers pass as they are (they follow the wording above); a failure to reach it before
// sending (a refused dial) stays retryable. Anything else, a connection lost mid-call (the
// leader crashed) or this call's deadline, leaves the write in doubt: the leader may have
// committed it, so it must never reach the caller as a bare "canceled" or "EOF".
func forwardError(ctx context.Context, err error) error {
	if retryable(err) {
		return err
	}
	if connect.IsWireError(err) {
		switch connect.CodeOf(err) {
		case connect.CodeCanceled, connect.CodeDeadlineExceeded, connect.CodeUnknown:
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("the leader gave up on the write (%v): %s", err, maybeApplied))
		}
		return err
	}
	if ctx.Err() != nil {
		return connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("timed out waiting for the leader to commit: %s", maybeApplied))
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("lost the connection to the leader during the write (%v): %s", err, maybeApplied))
}

// ApplyAsLeader commits a command on this node as the leader; it never forwards. It fails
// with FailedPrecondition (not applied) when this node does not lead.
func (n *Node) ApplyAsLeader(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	res, err := n.ApplyResultAsLeader(ctx, cmd)
	if err != nil {
		return 0, err
	}
	return res.Index, nil
}

// ApplyResultAsLeader is ApplyAsLeader returning the FSM's result (see ApplyResult); the
// internal service answers forwarded writes with it.
func (n *Node) ApplyResultAsLeader(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error) {
	if !n.IsLeader() {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
	}
	if err := n.forwardedMayApply(ctx, cmd); err != nil {
		return nil, err
	}
	res, err := n.applyLocalResult(ctx, cmd)
	if errors.Is(err, raft.ErrNotLeader) {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
	}
	return res, err
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

// applyLocal is applyLocalResult returning the index only.
func (n *Node) applyLocal(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	res, err := n.applyLocalResult(ctx, cmd)
	if err != nil {
		return 0, err
	}
	return res.Index, nil
}

// applyLocalResult stamps cmd with the leader's clock and ids, commits it, and checks both
// the future's error and the FSM's response (Consul and Nomad both shipped bugs checking
// one).
func (n *Node) applyLocalResult(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error) {
	stamp(cmd)
	b, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("encode command: %w; %s", err, notApplied))
	}
	timeout := defaultWriteTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	f := n.raft.r.Apply(b, timeout)
	return n.result(f)
}

func (n *Node) result(f raft.ApplyFuture) (*fsm.Result, error) {
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return nil, err
		case errors.Is(err, raft.ErrLeadershipLost):
			return nil, connect.NewError(connect.CodeUnavailable, errors.New("leadership was lost while committing: "+maybeApplied))
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, connect.NewError(connect.CodeUnavailable, errors.New("the leader is overloaded: the write timed out before it was sent; "+notApplied))
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, connect.NewError(connect.CodeUnavailable, errors.New("the leader is shutting down: "+maybeApplied))
		}
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("commit: %v: %s", err, maybeApplied))
	}
	res, ok := f.Response().(*fsm.Result)
	if !ok {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("unexpected apply response %T", f.Response()))
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res, nil
}

// stamp sets what only the leader may decide: the time, and ids of new entities.
func stamp(cmd *statev1.Command) {
	cmd.Time = timestamppb.Now()
	switch op := cmd.Op.(type) {
	case *statev1.Command_CreateComponent:
		if c := op.CreateComponent.GetComponent(); c != nil && c.Id == "" {
			c.Id = id.New()
		}
	case *statev1.Command_CreateDeployment:
		if d := op.CreateDeployment.GetDeployment(); d != nil && d.Id == "" {
			d.Id = id.New()
		}
	case *statev1.Command_CreateLinkedComponent:
		// One id ties the three together.
		if c := op.CreateLinkedComponent.GetComponent(); c != nil {
			if c.Id == "" {
				c.Id = id.New()
			}
			if l := op.CreateLinkedComponent.GetLink(); l != nil {
				l.ComponentId = c.Id
			}
			if d := op.CreateLinkedComponent.GetDeployment(); d != nil {
				d.ComponentId = c.Id
				if d.Id == "" {
					d.Id = id.New()
				}
			}
		}
	}
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

// ReadIndex serves a consistent read: it returns an index that the asking node's FSM must
// reach before it reads, such that the read sees every write acknowledged before ReadIndex
// was called.
//
// It commits a Barrier, which proves that this node still leads (a quorum accepted an entry
// of its term after the call began, so no other leader can have acknowledged a write this
// one lacks) and which hashicorp/raft answers from its FSM goroutine only after every
// earlier entry has been applied. So once the barrier returns, this node's FSM (fsm.Store)
// holds every acknowledged write, and the index to return is the FSM's own applied index.
//
// Not raft's AppliedIndex(): raft advances that when it hands entries to the FSM goroutine,
// before the FSM has applied them (a restarted follower was seen 819 entries behind it), and
// it counts barrier, no-op and configuration entries, which never reach the FSM. The FSM's
// index is always the index of a command entry (or of the snapshot a replica restored, which
// is the last command in it), so every replica's FSM reaches exactly that index, and a
// follower waiting for it (waitApplied) never waits for an entry it will not see.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if !n.IsLeader() {
		return 0, connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
	}
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	if err := n.raft.r.Barrier(timeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, connect.NewError(connect.CodeFailedPrecondition, errors.New(notLeaderMsg))
		}
		return 0, connect.NewError(connect.CodeUnavailable, fmt.Errorf("read barrier: %w", err))
	}
	return n.fsm.Store.Index(), nil
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

// waitApplied waits until this node's FSM has applied idx, an index ReadIndex returned
// (the FSM's index on the leader, which this replica's FSM reaches exactly; see ReadIndex).
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	if got, err := n.fsm.Store.WaitForIndex(ctx, idx); err != nil {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("this node has not caught up with the leader (applied %d of %d)", got, idx))
	}
	return nil
}
