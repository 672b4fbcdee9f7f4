package server

import (
	"context"
	"fmt"
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

// A Watch on a node that has not heard from a leader for more than watchStaleAfter (it is
// cut off from the cluster: its copy of the state no longer moves) ends with Unavailable, so
// that the console says "reconnecting" and opens it again, perhaps on another node, instead
// of showing a frozen copy as live. It checks every watchStaleCheck.
const (
	watchStaleAfter = 5 * time.Second
	watchStaleCheck = time.Second
)

// Watch streams one page of List: the whole page first (full), then, each time the
// components, deployments or placements tables change, only the rows of the page that changed,
// were added or left it. A change that leaves the page as it was sends nothing.
func (s *Components) Watch(ctx context.Context, req *connect.Request[componentv1.WatchRequest], stream *connect.ServerStream[componentv1.WatchResponse]) error {
	st := s.B.Store()
	check := time.NewTicker(watchStaleCheck)
	defer check.Stop()
	var page watchPage
	for first := true; ; first = false {
		if err := s.staleWatch(); err != nil {
			return err
		}
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
		changed, stop := st.WatchTables(idx, fsm.TableComponents, fsm.TableDeployments, fsm.TablePlacements)
		keepalive := time.NewTimer(watchKeepalive)
		err := func() error {
			defer stop()
			defer keepalive.Stop()
			for {
				select {
				case <-ctx.Done():
					return ctx.Err() // the client went away
				case <-changed:
					return nil
				case <-check.C:
					if err := s.staleWatch(); err != nil {
						return err
					}
				case <-keepalive.C:
					// Nothing changed for a while: say the stream is alive.
					return stream.Send(&componentv1.WatchResponse{Index: st.Index(), Total: page.total})
				}
			}
		}()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// staleWatch is the error that ends a Watch on a node cut off from its leader, or nil.
func (s *Components) staleWatch() error {
	if since := s.B.SinceLeaderContact(); since > watchStaleAfter {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("this node has not heard from a cluster leader for more than %s: its copy of the state may be stale; reconnect (another node may be reachable)", watchStaleAfter))
	}
	return nil
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
