package node

import (
	"context"
	"errors"
	"io"

	"connectrpc.com/connect"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/runtime/artifact"
)

// Operator snapshots are package replica's; node lends them its artifacts.

// SnapshotSave writes an operator snapshot to w (replica.Replica.SnapshotSave).
func (n *Node) SnapshotSave(ctx context.Context, w io.Writer) error {
	if n.dp == nil {
		return connect.NewError(connect.CodeUnavailable, errors.New("snapshot: this node is still starting"))
	}
	return n.Replica.SnapshotSave(ctx, w, snapArtifacts{n.dp, n.artifacts}, n.log)
}

// SnapshotRestore replaces the replicated state with the snapshot in r
// (replica.Replica.SnapshotRestore).
func (n *Node) SnapshotRestore(ctx context.Context, r io.Reader) (*clusterv1.SnapshotRestoreResponse, error) {
	if n.dp == nil {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("restore: this node is still starting"))
	}
	return n.Replica.SnapshotRestore(ctx, r, n.cfg.ID, snapArtifacts{n.dp, n.artifacts}, n.log)
}

// snapArtifacts implements replica.Artifacts: the data plane pins and fetches, the store
// holds.
type snapArtifacts struct {
	pins interface {
		Ensure(ctx context.Context, digest, origin string) (func(), error)
		Pin(digest string) func()
	}
	*artifact.Store
}

func (a snapArtifacts) Ensure(ctx context.Context, d, origin string) (func(), error) {
	return a.pins.Ensure(ctx, d, origin)
}
func (a snapArtifacts) Pin(d string) func() { return a.pins.Pin(d) }
