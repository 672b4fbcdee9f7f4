package replica

import (
	"context"
	"errors"
	"fmt"
	"net"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"
)

// NotLeaderMsg is the message of the FailedPrecondition a leader-only call returns on a
// follower; a forwarding node retries on it.
const NotLeaderMsg = "this node is not the leader"

// What a failed write tells its caller (docs/architecture.md, "Writes"). Every error of a
// write that may have reached the Raft log says MaybeApplied; one that certainly did not
// says NotApplied, and retrying it is safe. Domain errors (NotFound, AlreadyExists,
// InvalidArgument, ...) are the command's own result: it was applied and changed nothing.
const (
	NotApplied   = "the write was not applied"
	MaybeApplied = "the write may or may not have been applied; read before retrying"
)

const noLeader = "no cluster leader: the cluster is electing one or has lost quorum (fewer than half of its voters reachable); "

var (
	// ErrNoLeader is what a call that needs the leader returns when none was found in time.
	ErrNoLeader      = connect.NewError(connect.CodeUnavailable, errors.New(noLeader+"retry in a few seconds"))
	errNoLeaderWrite = connect.NewError(connect.CodeUnavailable, errors.New(noLeader+NotApplied+"; retry in a few seconds"))
	// ErrLeaderUnknown: this node knows no leader (or not its address) right now.
	ErrLeaderUnknown = errors.New("leader unknown")
)

// NotLeader is the error a leader-only call returns on a follower.
func NotLeader() error {
	return connect.NewError(connect.CodeFailedPrecondition, errors.New(NotLeaderMsg))
}

// Retryable reports errors after which the command was certainly not applied.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, ErrLeaderUnknown) {
		return true
	}
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Code() == connect.CodeFailedPrecondition && ce.Message() == NotLeaderMsg {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ForwardError words the failure of a forwarded write for the caller. The leader's own
// answers pass as they are (they follow the wording above); a failure to reach it before
// sending (a refused dial) stays retryable. Anything else, a connection lost mid-call (the
// leader crashed) or this call's deadline, leaves the write in doubt: the leader may have
// committed it, so it must never reach the caller as a bare "canceled" or "EOF".
func ForwardError(ctx context.Context, err error) error {
	if Retryable(err) {
		return err
	}
	if connect.IsWireError(err) {
		switch connect.CodeOf(err) {
		case connect.CodeCanceled, connect.CodeDeadlineExceeded, connect.CodeUnknown:
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("the leader gave up on the write (%v): %s", err, MaybeApplied))
		}
		return err
	}
	if ctx.Err() != nil {
		return connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("timed out waiting for the leader to commit: %s", MaybeApplied))
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("lost the connection to the leader during the write (%v): %s", err, MaybeApplied))
}

// commitError words the error of a local Raft apply future. raft.ErrNotLeader passes
// unchanged (retryable).
func commitError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return err
	case errors.Is(err, raft.ErrLeadershipLost):
		return connect.NewError(connect.CodeUnavailable, errors.New("leadership was lost while committing: "+MaybeApplied))
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return connect.NewError(connect.CodeUnavailable, errors.New("the leader is overloaded: the write timed out before it was sent; "+NotApplied))
	case errors.Is(err, raft.ErrRaftShutdown):
		return connect.NewError(connect.CodeUnavailable, errors.New("the leader is shutting down: "+MaybeApplied))
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("commit: %v: %s", err, MaybeApplied))
}
