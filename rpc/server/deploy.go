package server

import (
	"context"
	"errors"
	"io"
	"time"

	"connectrpc.com/connect"

	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// DeployBackend is what DeployService and ArtifactService need from a node.
type DeployBackend interface {
	// Upload stores the bundle read from body and deploys it.
	Upload(ctx context.Context, meta *deployv1.UploadMeta, body io.Reader) (*deployv1.UploadResponse, error)
	// WatchDeployment calls send at every change of a deployment's progress until done.
	WatchDeployment(ctx context.Context, id string, send func(*deployv1.WatchResponse) error) error
	// Deployments lists a component's deployments, newest first, with the deployments
	// table's index; with minIndex it first waits (at most wait) for that table to reach it.
	Deployments(ctx context.Context, component string, minIndex uint64, wait time.Duration) ([]*statev1.Deployment, uint64, error)
	// OpenArtifact opens a stored artifact for a peer.
	OpenArtifact(digest string) (io.ReadCloser, int64, error)
	// BuildLog returns a deployment (without its log) and its build output.
	BuildLog(ctx context.Context, id string) (*statev1.Deployment, string, error)
	// Rollback activates an earlier ready deployment ("" for the one before the active one).
	Rollback(ctx context.Context, component, deploymentID string) (*deployv1.RollbackResponse, error)
}

// Deploy implements DeployService.
type Deploy struct {
	B DeployBackend
}

var _ deployv1connect.DeployServiceHandler = (*Deploy)(nil)

func (s *Deploy) Upload(ctx context.Context, stream *connect.ClientStream[deployv1.UploadRequest]) (*connect.Response[deployv1.UploadResponse], error) {
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return nil, toConnect(err)
		}
		return nil, invalidArg(errors.New("upload is empty: send the metadata, then the bundle"))
	}
	meta := stream.Msg().GetMeta()
	if meta == nil {
		return nil, invalidArg(errors.New("the first upload message must carry the metadata"))
	}
	return respond(s.B.Upload(ctx, meta, &chunkReader[deployv1.UploadRequest]{stream: stream, chunk: uploadChunk}))
}

// uploadChunk is the bytes of an upload message after the first.
func uploadChunk(m *deployv1.UploadRequest) ([]byte, error) {
	if m.GetMeta() != nil {
		return nil, errors.New("metadata sent twice in one upload")
	}
	return m.GetChunk(), nil
}

func (s *Deploy) Watch(ctx context.Context, req *connect.Request[deployv1.WatchRequest], stream *connect.ServerStream[deployv1.WatchResponse]) error {
	if req.Msg.DeploymentId == "" {
		return invalidArg(errors.New("watch needs a deployment id"))
	}
	return toConnect(s.B.WatchDeployment(ctx, req.Msg.DeploymentId, stream.Send))
}

func (s *Deploy) List(ctx context.Context, req *connect.Request[deployv1.ListRequest]) (*connect.Response[deployv1.ListResponse], error) {
	ds, idx, err := s.B.Deployments(ctx, req.Msg.Component, req.Msg.MinIndex, waitFor(req.Msg.WaitMs))
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&deployv1.ListResponse{Deployments: ds, Index: idx}), nil
}

func (s *Deploy) BuildLog(ctx context.Context, req *connect.Request[deployv1.BuildLogRequest]) (*connect.Response[deployv1.BuildLogResponse], error) {
	if req.Msg.DeploymentId == "" {
		return nil, invalidArg(errors.New("build log needs a deployment id"))
	}
	d, log, err := s.B.BuildLog(ctx, req.Msg.DeploymentId)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&deployv1.BuildLogResponse{Deployment: d, Log: log}), nil
}

func (s *Deploy) Rollback(ctx context.Context, req *connect.Request[deployv1.RollbackRequest]) (*connect.Response[deployv1.RollbackResponse], error) {
	if req.Msg.Component == "" {
		return nil, invalidArg(errors.New("rollback needs a component"))
	}
	return respond(s.B.Rollback(ctx, req.Msg.Component, req.Msg.DeploymentId))
}

// Artifacts implements ArtifactService.
type Artifacts struct {
	B DeployBackend
}

var _ deployv1connect.ArtifactServiceHandler = (*Artifacts)(nil)

const fetchChunk = 256 << 10

func (s *Artifacts) Fetch(ctx context.Context, req *connect.Request[deployv1.FetchRequest], stream *connect.ServerStream[deployv1.FetchResponse]) error {
	rc, size, err := s.B.OpenArtifact(req.Msg.Digest)
	if err != nil {
		return toConnect(err)
	}
	defer rc.Close()
	buf := make([]byte, fetchChunk)
	first := true
	for {
		n, err := io.ReadFull(rc, buf)
		if n > 0 || first {
			msg := &deployv1.FetchResponse{Chunk: buf[:n]}
			if first {
				msg.Size, first = size, false
			}
			if serr := stream.Send(msg); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return toConnect(err)
		}
		if ctx.Err() != nil {
			return toConnect(ctx.Err())
		}
	}
}
