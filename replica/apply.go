package replica

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/id"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// DefaultWriteTimeout bounds a write whose caller set no deadline.
const DefaultWriteTimeout = 30 * time.Second

// Apply commits cmd through the Raft leader: locally when this node leads, forwarded to the
// leader otherwise. It returns the command's log index, or the error Apply gave (a domain
// error from fsm, or a Connect error worded as in errors.go).
func (r *Replica) Apply(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	return index(r.ApplyResult(ctx, cmd))
}

// ApplyResult is Apply returning the FSM's result: the index and the component the command
// wrote as it stood right after the command applied, so a handler answers from the write
// itself and never from a later read that a concurrent write may have changed. The
// result's Err is always nil: a domain error is returned as the error.
func (r *Replica) ApplyResult(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error) {
	if cmd.Actor == "" {
		cmd.Actor = auth.ActorFrom(ctx) // who asked, from the API call this write serves
	}
	ctx, cancel := withDefaultTimeout(ctx, DefaultWriteTimeout)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		if ctx.Err() != nil {
			return nil, connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("%s: %w", NotApplied, ctx.Err()))
		}
		var res *fsm.Result
		var err error
		if r.IsLeader() {
			res, err = r.applyLocal(ctx, cmd)
		} else {
			res, err = r.forwardApply(ctx, cmd)
		}
		if !Retryable(err) {
			return res, err
		}
		select {
		case <-ctx.Done():
			if errors.Is(err, ErrLeaderUnknown) {
				return nil, errNoLeaderWrite
			}
			return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: %w", NotApplied, err))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

func (r *Replica) forwardApply(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error) {
	addr, err := r.LeaderAPI()
	if err != nil {
		return nil, err
	}
	res, err := r.Peers.ForwardApply(ctx, addr, cmd)
	if err != nil {
		return nil, ForwardError(ctx, err)
	}
	return res, nil
}

// ApplyAsLeader commits a command on this node as the leader; it never forwards. It fails
// with FailedPrecondition (not applied) when this node does not lead.
func (r *Replica) ApplyAsLeader(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	return index(r.ApplyResultAsLeader(ctx, cmd))
}

// ApplyResultAsLeader is ApplyAsLeader returning the FSM's result (see ApplyResult); the
// internal service answers forwarded writes with it.
func (r *Replica) ApplyResultAsLeader(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error) {
	if !r.IsLeader() {
		return nil, NotLeader()
	}
	res, err := r.applyLocal(ctx, cmd)
	if errors.Is(err, raft.ErrNotLeader) {
		return nil, NotLeader()
	}
	return res, err
}

// ApplyLocal commits cmd on this node as the leader and returns its index; on a follower it
// fails with raft.ErrNotLeader (retryable).
func (r *Replica) ApplyLocal(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	return index(r.applyLocal(ctx, cmd))
}

// applyLocal stamps cmd with the leader's clock and ids, commits it, and checks both the
// future's error and the FSM's response (Consul and Nomad both shipped bugs checking one).
// Commands that may share an entry go through the group commit (group.go).
func (r *Replica) applyLocal(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error) {
	stamp(cmd)
	b, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("encode command: %w; %s", err, NotApplied))
	}
	if key, ok := fsm.BatchKey(cmd); ok {
		return r.applyGrouped(ctx, key, b)
	}
	r.waiting.Add(1)
	f := r.Raft.Apply(b, timeoutFor(ctx, DefaultWriteTimeout, time.Millisecond))
	err = f.Error()
	r.waiting.Add(-1)
	if err != nil {
		return nil, commitError(err)
	}
	res, ok := f.Response().(*fsm.Result)
	if !ok {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("unexpected apply response %T", f.Response()))
	}
	return result(res)
}

func index(res *fsm.Result, err error) (uint64, error) {
	if err != nil {
		return 0, err
	}
	return res.Index, nil
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
