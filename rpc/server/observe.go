package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	logsv1 "github.com/velocity9/v9/rpc/gen/v9/logs/v1"
	"github.com/velocity9/v9/rpc/gen/v9/logs/v1/logsv1connect"
	statsv1 "github.com/velocity9/v9/rpc/gen/v9/stats/v1"
	"github.com/velocity9/v9/rpc/gen/v9/stats/v1/statsv1connect"
)

// ObserveBackend is what LogService and StatsService need from a node.
type ObserveBackend interface {
	TailLogs(ctx context.Context, req *logsv1.TailRequest, send func(*logsv1.TailResponse) error) error
	Series(ctx context.Context, req *statsv1.SeriesRequest) (*statsv1.SeriesResponse, error)
}

// Logs implements LogService.
type Logs struct {
	B ObserveBackend
}

var _ logsv1connect.LogServiceHandler = (*Logs)(nil)

func (s *Logs) Tail(ctx context.Context, req *connect.Request[logsv1.TailRequest], stream *connect.ServerStream[logsv1.TailResponse]) error {
	if req.Msg.Component == "" {
		return invalidArg(errors.New("tail needs a component name"))
	}
	return toConnect(s.B.TailLogs(ctx, req.Msg, stream.Send))
}

// Stats implements StatsService.
type Stats struct {
	B ObserveBackend
}

var _ statsv1connect.StatsServiceHandler = (*Stats)(nil)

func (s *Stats) Series(ctx context.Context, req *connect.Request[statsv1.SeriesRequest]) (*connect.Response[statsv1.SeriesResponse], error) {
	if req.Msg.Component == "" {
		return nil, invalidArg(errors.New("series needs a component name"))
	}
	return respond(s.B.Series(ctx, req.Msg))
}
