package server

import (
	"context"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/fsm"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
)

// watchKeepalive is how long a Watch stream stays silent before it sends an empty change (the
// index only), so that the client and the proxies between see the stream is alive.
const watchKeepalive = 30 * time.Second

// Watch streams one page of List: the whole page first (full), then, each time the
// components, deployments or placements tables change, only the rows of the page that changed,
// were added or left it. A change that leaves the page as it was sends nothing.
func (s *Components) Watch(ctx context.Context, req *connect.Request[componentv1.WatchRequest], stream *connect.ServerStream[componentv1.WatchResponse]) error {
	st := s.B.Store()
	var page watchPage
	for first := true; ; first = false {
		idx, comps, statuses := componentStatuses(st, "", false)
		comps, total := pageComponents(comps, req.Msg.Filter, req.Msg.Offset, req.Msg.Limit)
		rows := make([]*componentv1.ListRow, len(comps))
		for i, c := range comps {
			rows[i] = &componentv1.ListRow{Component: c, Status: statuses[c.Name]}
		}
		if msg := page.update(idx, total, rows, first); msg != nil {
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithTimeout(ctx, watchKeepalive)
		_, err := st.WaitTables(wctx, idx, fsm.TableComponents, fsm.TableDeployments, fsm.TablePlacements)
		cancel()
		if ctx.Err() != nil {
			return nil // the client went away
		}
		if err != nil {
			// Nothing changed for a while: say the stream is alive.
			if err := stream.Send(&componentv1.WatchResponse{Index: st.Index(), Total: page.total}); err != nil {
				return err
			}
		}
	}
}

// watchPage is what a Watch stream has sent: the rows the client holds, by component name.
type watchPage struct {
	rows  map[string]*componentv1.ListRow
	total uint32
}

// update records the page read at idx and returns the message that brings the client from
// what it holds to it: the whole page when reset (full), else the rows that differ and the names that
// left (nil when nothing did).
func (p *watchPage) update(idx uint64, total uint32, rows []*componentv1.ListRow, reset bool) *componentv1.WatchResponse {
	msg := &componentv1.WatchResponse{Index: idx, Total: total, Full: reset}
	if reset || p.rows == nil {
		p.rows = map[string]*componentv1.ListRow{}
		msg.Full = true
	}
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		name := r.Component.GetName()
		seen[name] = true
		if old, ok := p.rows[name]; !ok || !proto.Equal(old, r) {
			msg.Rows = append(msg.Rows, r)
			p.rows[name] = r
		}
	}
	for name := range p.rows {
		if !seen[name] {
			msg.Removed = append(msg.Removed, name)
			delete(p.rows, name)
		}
	}
	slices.Sort(msg.Removed)
	changed := msg.Full || len(msg.Rows) > 0 || len(msg.Removed) > 0 || total != p.total
	p.total = total
	if !changed {
		return nil
	}
	return msg
}
