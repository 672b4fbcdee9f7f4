package node

import (
	"context"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/observe"
	logsv1 "github.com/velocity9/v9/rpc/gen/v9/logs/v1"
	statsv1 "github.com/velocity9/v9/rpc/gen/v9/stats/v1"
)

// TailLogs sends a component's recent lines, merged by time across every node (or this
// node's only when req.Local), then with Follow the new lines as they come.
func (n *Node) TailLogs(ctx context.Context, req *logsv1.TailRequest, send func(*logsv1.TailResponse) error) error {
	return n.observe.TailLogs(ctx, req, send)
}

// Series returns a component's request time series, summed over every node that answers
// (or this node's only with Local).
func (n *Node) Series(ctx context.Context, req *statsv1.SeriesRequest) (*statsv1.SeriesResponse, error) {
	return n.observe.Series(ctx, req)
}

// observePeers reaches other nodes' LogService and StatsService.
type observePeers struct{ n *Node }

var _ observe.Peers = observePeers{}

func (p observePeers) TailLogs(ctx context.Context, addr string, req *logsv1.TailRequest, emit func(*logsv1.TailResponse) error) error {
	stream, err := p.n.peers.get(addr).logs.Tail(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		if err := emit(stream.Msg()); err != nil {
			return err
		}
	}
	return stream.Err()
}

func (p observePeers) Series(ctx context.Context, addr string, req *statsv1.SeriesRequest) (*statsv1.SeriesResponse, error) {
	r, err := p.n.peers.get(addr).stats.Series(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}
