package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/fsm"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/snapshot"
)

// Artifacts is what an operator snapshot needs of this node's artifacts.
type Artifacts interface {
	// Ensure makes sure the artifact is on this node (fetching it from origin or a peer) and
	// pins it until unpin.
	Ensure(ctx context.Context, digest, origin string) (unpin func(), err error)
	Pin(digest string) (unpin func())
	Get(digest string) (io.ReadCloser, int64, error)
	Has(digest string) bool
	PutVerified(r io.Reader, digest string) error
}

// restoreIndexGap is how far past the leader's last log index a restored state is placed.
// hashicorp/raft restores a user snapshot at max(last index, meta index)+1, from its leader
// loop; asking for last index + restoreIndexGap makes that exactly the index written into
// the state, unless more entries than that are appended while the restore is queued.
const restoreIndexGap = 1 << 16

// SnapshotSave writes an operator snapshot to w: the whole replicated state, read after a
// consistent barrier (so it holds every write acknowledged before the call), and every
// artifact its deployments reference, fetched from peers first when this node lacks one.
func (r *Replica) SnapshotSave(ctx context.Context, w io.Writer, arts Artifacts, log *slog.Logger) error {
	if err := r.ConsistentBarrier(ctx); err != nil {
		return err
	}
	st := r.Store.State()
	origin := map[string]string{}
	for _, d := range st.Deployments {
		origin[d.ArtifactDigest] = d.ArtifactOrigin
	}
	digests := snapshot.Referenced(st)
	for _, d := range digests {
		unpin, err := arts.Ensure(ctx, d, origin[d])
		if err != nil {
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("snapshot: %w", err))
		}
		defer unpin()
	}
	if err := snapshot.Write(w, st, time.Now(), arts.Get); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	log.Info("operator snapshot saved", "index", st.Index, "components", len(st.Components), "artifacts", len(digests))
	return nil
}

// SnapshotRestore replaces the whole replicated state with the operator snapshot in rd.
// Only the leader restores. The artifacts are stored on this node (nodeID) first (the others
// fetch them from it, as they fetch any artifact); then the state goes to Raft with
// raft.Restore, which installs it on every follower as a snapshot. What belongs to this
// cluster rather than to the saved one is kept: the members (nodes) stay this cluster's own,
// and the saved placements are dropped, so the scheduler places every component afresh.
func (r *Replica) SnapshotRestore(ctx context.Context, rd io.Reader, nodeID string, arts Artifacts, log *slog.Logger) (*clusterv1.SnapshotRestoreResponse, error) {
	if !r.IsLeader() {
		msg := NotLeaderMsg + ": send the snapshot to the leader"
		if addr, err := r.LeaderAPI(); err == nil {
			msg += " (" + addr + ")"
		}
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New(msg))
	}
	var unpin []func()
	defer func() {
		for _, f := range unpin {
			f()
		}
	}()
	m, st, err := snapshot.Read(rd, func(d string, rd io.Reader) error {
		unpin = append(unpin, arts.Pin(d))
		if arts.Has(d) {
			_, err := io.Copy(io.Discard, rd)
			return err
		}
		return arts.PutVerified(rd, d)
	})
	if err != nil {
		if errors.Is(err, snapshot.ErrFormat) {
			return nil, connect.NewError(connect.CodeInvalidArgument, err)
		}
		return nil, err
	}

	st.Nodes = r.Store.State().Nodes
	st.Placements = nil
	for _, d := range st.Deployments {
		if d.ArtifactDigest != "" {
			d.ArtifactOrigin = nodeID // every artifact is on this node now
		}
	}
	timeout := timeoutFor(ctx, 2*time.Minute, time.Second)
	// raft refuses to restore until the latest configuration entry is applied (a cluster
	// that has just formed): a barrier commits and applies everything before it.
	if err := r.Raft.Barrier(timeout).Error(); err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("barrier before restore: %w", err))
	}
	at := r.Raft.LastIndex() + restoreIndexGap
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
	if err := r.Raft.Restore(meta, bytes.NewReader(b), timeout); err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("raft restore: %w", err))
	}
	if got := r.Store.Index(); got != st.Index {
		log.Warn("restored state's index differs from the one asked", "want", st.Index, "got", got)
	}
	log.Info("operator snapshot restored", "index", st.Index, "saved_index", m.Index,
		"components", len(st.Components), "deployments", len(st.Deployments), "artifacts", len(m.Artifacts))
	return &clusterv1.SnapshotRestoreResponse{
		Index: st.Index, SavedIndex: m.Index, Components: uint32(len(st.Components)),
		Deployments: uint32(len(st.Deployments)), Artifacts: uint32(len(m.Artifacts)),
	}, nil
}
