package replica

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"
)

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
func (r *Replica) ReadIndex(ctx context.Context) (uint64, error) {
	if !r.IsLeader() {
		return 0, NotLeader()
	}
	if err := r.Raft.Barrier(timeoutFor(ctx, 5*time.Second, time.Millisecond)).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, NotLeader()
		}
		return 0, connect.NewError(connect.CodeUnavailable, fmt.Errorf("read barrier: %w", err))
	}
	return r.Store.Index(), nil
}

// ConsistentBarrier returns once this node has applied every write committed before the
// call, as confirmed by the leader.
func (r *Replica) ConsistentBarrier(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		var idx uint64
		var err error
		if r.IsLeader() {
			idx, err = r.ReadIndex(ctx)
		} else if addr, lerr := r.LeaderAPI(); lerr != nil {
			err = lerr
		} else {
			idx, err = r.Peers.ForwardReadIndex(ctx, addr)
		}
		if err == nil {
			return r.waitApplied(ctx, idx)
		}
		if !Retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ErrNoLeader
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitApplied waits until this node's FSM has applied idx, an index ReadIndex returned
// (the FSM's index on the leader, which this replica's FSM reaches exactly; see ReadIndex).
func (r *Replica) waitApplied(ctx context.Context, idx uint64) error {
	if got, err := r.Store.WaitForIndex(ctx, idx); err != nil {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("this node has not caught up with the leader (applied %d of %d)", got, idx))
	}
	return nil
}
