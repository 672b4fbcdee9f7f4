package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/replica"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/snapshot"
)

// restoreIndexGap is how far past the leader's last log index a restored state is placed.
// hashicorp/raft restores a user snapshot at max(last index, meta index)+1, from its leader
// loop; asking for last index + restoreIndexGap makes that exactly the index written into
// the state, unless more entries than that are appended while the restore is queued.
const restoreIndexGap = 1 << 16

// SnapshotSave writes an operator snapshot to w: the whole replicated state, read after a
// consistent barrier (so it holds every write acknowledged before the call), and every
// artifact its deployments reference, fetched from peers first when this node lacks one.
func (n *Node) SnapshotSave(ctx context.Context, w io.Writer) error {
	if err := n.ConsistentBarrier(ctx); err != nil {
		return err
	}
	st := n.fsm.Store.State()
	origin := map[string]string{}
	for _, d := range st.Deployments {
		origin[d.ArtifactDigest] = d.ArtifactOrigin
	}
	if n.dp == nil {
		return connect.NewError(connect.CodeUnavailable, errors.New("snapshot: this node is still starting"))
	}
	digests := snapshot.Referenced(st)
	for _, d := range digests {
		unpin, err := n.dp.Ensure(ctx, d, origin[d])
		if err != nil {
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("snapshot: %w", err))
		}
		defer unpin()
	}
	if err := snapshot.Write(w, st, time.Now(), n.artifacts.Get); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	n.log.Info("operator snapshot saved", "index", st.Index, "components", len(st.Components), "artifacts", len(digests))
	return nil
}

// SnapshotRestore replaces the whole replicated state with the operator snapshot in r. Only
// the leader restores. The artifacts are stored on this node first (the others fetch them
// from it, as they fetch any artifact); then the state goes to Raft with raft.Restore, which
// installs it on every follower as a snapshot. What belongs to this cluster rather than to
// the saved one is kept: the members (nodes) stay this cluster's own, and the saved
// placements are dropped, so the scheduler places every component afresh on these nodes.
func (n *Node) SnapshotRestore(ctx context.Context, r io.Reader) (*clusterv1.SnapshotRestoreResponse, error) {
	if !n.IsLeader() {
		msg := replica.NotLeaderMsg + ": send the snapshot to the leader"
		if addr, err := n.LeaderAPI(); err == nil {
			msg += " (" + addr + ")"
		}
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New(msg))
	}
	if n.dp == nil {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("restore: this node is still starting"))
	}
	var unpin []func()
	defer func() {
		for _, f := range unpin {
			f()
		}
	}()
	m, st, err := snapshot.Read(r, func(d string, r io.Reader) error {
		unpin = append(unpin, n.dp.Pin(d))
		if n.artifacts.Has(d) {
			_, err := io.Copy(io.Discard, r)
			return err
		}
		return n.artifacts.PutVerified(r, d)
	})
	if err != nil {
		if errors.Is(err, snapshot.ErrFormat) {
			return nil, connect.NewError(connect.CodeInvalidArgument, err)
		}
		return nil, err
	}

	cur := n.fsm.Store.State()
	st.Nodes = cur.Nodes
	st.Placements = nil
	for _, d := range st.Deployments {
		if d.ArtifactDigest != "" {
			d.ArtifactOrigin = n.cfg.ID // every artifact is on this node now
		}
	}
	timeout := 2 * time.Minute
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Second)
	}
	// raft refuses to restore until the latest configuration entry is applied (a cluster
	// that has just formed): a barrier commits and applies everything before it.
	if err := n.raft.r.Barrier(timeout).Error(); err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("barrier before restore: %w", err))
	}
	at := n.raft.r.LastIndex() + restoreIndexGap
	st.Index = at + 1
	b, err := fsm.EncodeSnapshot(st)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	// raft panics when its FSM fails to restore, so the state is tried on a scratch store.
	if err := fsm.NewStore().Restore(st); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("the snapshot's state is invalid: %w", err))
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: at, Size: int64(len(b))}
	if err := n.raft.r.Restore(meta, bytes.NewReader(b), timeout); err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("raft restore: %w", err))
	}
	if got := n.fsm.Store.Index(); got != st.Index {
		n.log.Warn("restored state's index differs from the one asked", "want", st.Index, "got", got)
	}
	n.log.Info("operator snapshot restored", "index", st.Index, "saved_index", m.Index,
		"components", len(st.Components), "deployments", len(st.Deployments), "artifacts", len(m.Artifacts))
	return &clusterv1.SnapshotRestoreResponse{
		Index: st.Index, SavedIndex: m.Index, Components: uint32(len(st.Components)),
		Deployments: uint32(len(st.Deployments)), Artifacts: uint32(len(m.Artifacts)),
	}, nil
}
