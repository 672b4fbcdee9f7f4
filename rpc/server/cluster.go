package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/fsm"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// ClusterBackend is what ClusterService needs from a node.
type ClusterBackend interface {
	Status(ctx context.Context) (*clusterv1.StatusResponse, error)
	Join(ctx context.Context, req *clusterv1.JoinRequest) (uint64, error)
	RemovePeer(ctx context.Context, id string) (uint64, error)
	Nodes(ctx context.Context) (*clusterv1.NodesResponse, error)
	// SnapshotSave writes an operator snapshot (the whole state and its artifacts) to w.
	SnapshotSave(ctx context.Context, w io.Writer) error
	// SnapshotRestore replaces the whole state with the operator snapshot in r (leader only).
	SnapshotRestore(ctx context.Context, r io.Reader) (*clusterv1.SnapshotRestoreResponse, error)
	Drain(ctx context.Context, id string, undo bool) (uint64, error)
}

// Cluster implements ClusterService.
type Cluster struct {
	B ClusterBackend
}

var _ clusterv1connect.ClusterServiceHandler = (*Cluster)(nil)

func (s *Cluster) Status(ctx context.Context, _ *connect.Request[clusterv1.StatusRequest]) (*connect.Response[clusterv1.StatusResponse], error) {
	return respond(s.B.Status(ctx))
}

func (s *Cluster) Join(ctx context.Context, req *connect.Request[clusterv1.JoinRequest]) (*connect.Response[clusterv1.JoinResponse], error) {
	m := req.Msg
	if m.NodeId == "" || m.RaftAddr == "" || m.ApiAddr == "" {
		return nil, invalidArg(errors.New("join needs node_id, raft_addr and api_addr"))
	}
	idx, err := s.B.Join(ctx, m)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&clusterv1.JoinResponse{Index: idx}), nil
}

func (s *Cluster) RemovePeer(ctx context.Context, req *connect.Request[clusterv1.RemovePeerRequest]) (*connect.Response[clusterv1.RemovePeerResponse], error) {
	if req.Msg.NodeId == "" {
		return nil, invalidArg(errors.New("remove-peer needs a node id"))
	}
	idx, err := s.B.RemovePeer(ctx, req.Msg.NodeId)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&clusterv1.RemovePeerResponse{Index: idx}), nil
}

func (s *Cluster) Nodes(ctx context.Context, _ *connect.Request[clusterv1.NodesRequest]) (*connect.Response[clusterv1.NodesResponse], error) {
	return respond(s.B.Nodes(ctx))
}

func (s *Cluster) Drain(ctx context.Context, req *connect.Request[clusterv1.DrainRequest]) (*connect.Response[clusterv1.DrainResponse], error) {
	if req.Msg.NodeId == "" {
		return nil, invalidArg(errors.New("drain needs a node id"))
	}
	idx, err := s.B.Drain(ctx, req.Msg.NodeId, req.Msg.Undo)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&clusterv1.DrainResponse{Index: idx}), nil
}

// InternalBackend is what the node-to-node InternalService needs.
type InternalBackend interface {
	Discover(ctx context.Context, req *clusterv1.DiscoverRequest) (*clusterv1.DiscoverResponse, error)
	// ApplyResultAsLeader commits cmd if this node leads, and fails with FailedPrecondition
	// if not: a forwarded write is never forwarded again. The result carries the component
	// the command wrote, as it stood right after the command applied.
	ApplyResultAsLeader(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error)
	ReadIndex(ctx context.Context) (uint64, error)
	// HeartbeatAsLeader records a node's heartbeat if this node leads, and fails with
	// FailedPrecondition if not.
	HeartbeatAsLeader(ctx context.Context, req *clusterv1.HeartbeatRequest) (*clusterv1.HeartbeatResponse, error)
	// RootKeys returns the keyring's root keys this node holds; with create, the leader
	// makes the first one if the cluster has none.
	RootKeys(ctx context.Context, create bool) (*clusterv1.KeysResponse, error)
	// IsMember reports whether node id is in this node's Raft configuration.
	IsMember(id string) bool
}

// Internal implements InternalService.
type Internal struct {
	B InternalBackend
}

var _ clusterv1connect.InternalServiceHandler = (*Internal)(nil)

func (s *Internal) Discover(ctx context.Context, req *connect.Request[clusterv1.DiscoverRequest]) (*connect.Response[clusterv1.DiscoverResponse], error) {
	if self := req.Msg.Self; self != nil {
		if err := auth.CallerIs(ctx, self.NodeId, "discover announcement"); err != nil {
			return nil, err
		}
	}
	return respond(s.B.Discover(ctx, req.Msg))
}

// member refuses a node that is not in the Raft configuration (removed, or never joined):
// its certificate of the cluster CA outlives its membership, so it alone must not let a
// machine write to the state, take part in reads or heartbeats, or fetch root keys. Calls
// without a peer certificate (a dev cluster without TLS) are not checked here.
func (s *Internal) member(ctx context.Context, what string) error {
	if id := auth.PeerNode(ctx); id != "" && !s.B.IsMember(id) {
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf(
			"%s refused: node %q is not a member of this cluster (removed?); it must join again (v9 agent --join) before it takes part", what, id))
	}
	return nil
}

func (s *Internal) Apply(ctx context.Context, req *connect.Request[clusterv1.ApplyRequest]) (*connect.Response[clusterv1.ApplyResponse], error) {
	if err := s.member(ctx, "apply"); err != nil {
		return nil, err
	}
	if req.Msg.Command == nil {
		return nil, invalidArg(errors.New("apply needs a command"))
	}
	res, err := s.B.ApplyResultAsLeader(ctx, req.Msg.Command)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&clusterv1.ApplyResponse{Index: res.Index, Component: res.Component}), nil
}

func (s *Internal) ReadIndex(ctx context.Context, _ *connect.Request[clusterv1.ReadIndexRequest]) (*connect.Response[clusterv1.ReadIndexResponse], error) {
	if err := s.member(ctx, "read index"); err != nil {
		return nil, err
	}
	idx, err := s.B.ReadIndex(ctx)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&clusterv1.ReadIndexResponse{Index: idx}), nil
}

func (s *Internal) Heartbeat(ctx context.Context, req *connect.Request[clusterv1.HeartbeatRequest]) (*connect.Response[clusterv1.HeartbeatResponse], error) {
	if req.Msg.NodeId == "" {
		return nil, invalidArg(errors.New("heartbeat needs a node id"))
	}
	// Heartbeats go straight to the leader, never forwarded: the sender is the subject.
	if err := auth.CallerIs(ctx, req.Msg.NodeId, "heartbeat"); err != nil {
		return nil, err
	}
	if err := s.member(ctx, "heartbeat"); err != nil {
		return nil, err
	}
	return respond(s.B.HeartbeatAsLeader(ctx, req.Msg))
}

func (s *Internal) Keys(ctx context.Context, req *connect.Request[clusterv1.KeysRequest]) (*connect.Response[clusterv1.KeysResponse], error) {
	if err := s.member(ctx, "root keys"); err != nil {
		return nil, err
	}
	return respond(s.B.RootKeys(ctx, req.Msg.Create))
}

// snapshotChunk is the size of the chunks a snapshot is streamed in.
const snapshotChunk = 256 << 10

func (s *Cluster) SnapshotSave(ctx context.Context, _ *connect.Request[clusterv1.SnapshotSaveRequest], stream *connect.ServerStream[clusterv1.SnapshotSaveResponse]) error {
	w := &chunkWriter{size: snapshotChunk, send: func(b []byte) error { return stream.Send(&clusterv1.SnapshotSaveResponse{Chunk: b}) }}
	if err := s.B.SnapshotSave(ctx, w); err != nil {
		return toConnect(err)
	}
	return toConnect(w.flush())
}

func (s *Cluster) SnapshotRestore(ctx context.Context, stream *connect.ClientStream[clusterv1.SnapshotRestoreRequest]) (*connect.Response[clusterv1.SnapshotRestoreResponse], error) {
	rd := &chunkReader[clusterv1.SnapshotRestoreRequest]{stream: stream,
		chunk: func(m *clusterv1.SnapshotRestoreRequest) ([]byte, error) { return m.Chunk, nil }}
	resp, err := s.B.SnapshotRestore(ctx, rd)
	if err != nil {
		// Refused before the whole archive was read (on a follower, or a bad archive): an
		// HTTP/1.1 client still sending would see its connection reset instead of the
		// error, so read what it sends, within a bound, first.
		_, _ = io.Copy(io.Discard, io.LimitReader(rd, maxRestoreDrain))
		return nil, toConnect(err)
	}
	return connect.NewResponse(resp), nil
}

// maxRestoreDrain bounds what a refused restore reads on so that its client gets the error.
const maxRestoreDrain = 64 << 20
