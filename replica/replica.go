package replica

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Peers reaches the other nodes of the cluster; node implements it with its API clients.
type Peers interface {
	// APIAddrOf returns the API address of node id, "" when none is known.
	APIAddrOf(id string) string
	// ForwardApply commits cmd through the leader whose API address is addr.
	ForwardApply(ctx context.Context, addr string, cmd *statev1.Command) (*fsm.Result, error)
	// ForwardReadIndex asks the leader at addr for a read index.
	ForwardReadIndex(ctx context.Context, addr string) (uint64, error)
}

// Replica is one node's Raft replica seen from the write and read paths.
type Replica struct {
	Raft  *raft.Raft // set once Raft is open, before any call
	Store *fsm.Store // the replica's FSM state
	Peers Peers

	group   group        // writes queued for the next batch entry (group.go)
	onSend  func()       // tests: called as the group hands an entry to Raft
	waiting atomic.Int64 // entries this node handed to Raft whose futures are unresolved
}

// Waiting reports whether this node waits for the result of an entry it handed to Raft:
// only then does anyone read what its FSM answers for the entries it applies (Raft gives a
// future only to the node that proposed the entry). Unlike IsLeader it stays true for
// entries that commit while leadership moves on, so that their writers still get their
// results.
func (r *Replica) Waiting() bool { return r.waiting.Load() > 0 }

// IsLeader reports whether this node is the Raft leader.
func (r *Replica) IsLeader() bool { return r.Raft.State() == raft.Leader }

// SinceLeaderContact is how long ago this node last heard from a leader: 0 while it leads, and
// the longest duration when it never has. A follower cut off from the cluster sees it grow.
func (r *Replica) SinceLeaderContact() time.Duration {
	if r.IsLeader() {
		return 0
	}
	lc := r.Raft.LastContact()
	if lc.IsZero() {
		return math.MaxInt64
	}
	return time.Since(lc)
}

// WaitLeader blocks until this node knows a leader.
func (r *Replica) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if _, id := r.Raft.LeaderWithID(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// LeaderAPI returns the API address of the current leader, or ErrLeaderUnknown.
func (r *Replica) LeaderAPI() (string, error) {
	_, id := r.Raft.LeaderWithID()
	if id == "" {
		return "", ErrLeaderUnknown
	}
	if a := r.Peers.APIAddrOf(string(id)); a != "" {
		return a, nil
	}
	return "", fmt.Errorf("%w: no API address known for leader %s", ErrLeaderUnknown, id)
}

// OnLeader runs local on this node if it leads, else remote with the leader's API address,
// retrying (until ctx ends, DefaultWriteTimeout without a deadline) while no leader is
// known or the one asked has stepped down.
func (r *Replica) OnLeader(ctx context.Context, local func() (uint64, error), remote func(addr string) (uint64, error)) (uint64, error) {
	ctx, cancel := withDefaultTimeout(ctx, DefaultWriteTimeout)
	defer cancel()
	for {
		var idx uint64
		var err error
		if r.IsLeader() {
			idx, err = local()
		} else if addr, lerr := r.LeaderAPI(); lerr != nil {
			err = lerr
		} else {
			idx, err = remote(addr)
		}
		if !Retryable(err) {
			return idx, err
		}
		select {
		case <-ctx.Done():
			return 0, ErrNoLeader
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// timeoutFor is what is left of ctx's deadline (at least min), else def.
func timeoutFor(ctx context.Context, def, floor time.Duration) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), floor)
	}
	return def
}
