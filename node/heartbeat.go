package node

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/proxy"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
)

// lease is this node's side of liveness: when the leader last confirmed a heartbeat. The
// lease counts from when the heartbeat was sent, which is never later than when the leader
// received it, so the node's lease always runs out before the leader's TTL does. Times are
// kept on the monotonic clock (offsets from base): a wall-clock step must not stretch it.
type lease struct {
	base    time.Time
	renewed atomic.Int64 // send time of the last answered heartbeat, ns since base; 0: never
}

func (l *lease) renew(sent time.Time) { l.renewed.Store(max(int64(sent.Sub(l.base)), 1)) }

// held reports whether the lease still holds at now.
func (l *lease) held(now time.Time, d time.Duration) bool {
	r := l.renewed.Load()
	return r != 0 && time.Duration(int64(now.Sub(l.base))-r) < d
}

// leaseHeld reports whether this node may run exclusive instances now.
func (n *Node) leaseHeld() bool { return n.lease.held(time.Now(), n.cfg.Liveness.Lease) }

// heartbeatLoop sends a heartbeat with this node's load to the leader every interval (to
// itself when it leads) and renews the lease on each answer, once this node has applied
// the leader's index from the answer. When the lease runs out or
// comes back, it wakes the reconciler, which stops or restarts exclusive instances.
func (n *Node) heartbeatLoop(ctx context.Context) {
	every := n.cfg.Liveness.HeartbeatInterval
	t := time.NewTicker(every)
	defer t.Stop()
	was := false
	for {
		sent := time.Now()
		if idx, err := n.heartbeat(ctx, 2*every); err != nil {
			n.log.Debug("heartbeat", "err", err)
		} else {
			// Renew (from the send time) once this node has applied what the leader had:
			// usually a round trip later under steady writes.
			wctx, cancel := context.WithTimeout(ctx, every)
			if got, _ := n.fsm.Store.WaitForIndex(wctx, idx); got >= idx {
				n.lease.renew(sent)
			}
			cancel()
		}
		if held := n.leaseHeld(); held != was {
			was = held
			if !held {
				n.log.Warn("lease lost: cannot reach the leader; exclusive instances stop", "lease", n.cfg.Liveness.Lease)
			}
			n.rec.poke()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat sends one heartbeat and returns the leader's applied index from the answer.
func (n *Node) heartbeat(ctx context.Context, timeout time.Duration) (uint64, error) {
	req := &clusterv1.HeartbeatRequest{NodeId: n.cfg.ID, Load: n.load.take(), Artifacts: n.heldArtifacts()}
	if n.IsLeader() {
		resp, err := n.HeartbeatAsLeader(ctx, req)
		return resp.GetIndex(), err
	}
	addr, err := n.leaderAPI()
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := n.peers.get(addr).internal.Heartbeat(cctx, connect.NewRequest(req))
	if err != nil {
		return 0, err
	}
	return resp.Msg.Index, nil
}

// loadReporter turns the proxy's load counts into per-interval rates for heartbeats. Only
// the heartbeat loop calls it.
type loadReporter struct {
	l    *proxy.Load
	last time.Time
}

func (r *loadReporter) take() []*clusterv1.ComponentLoad {
	now := time.Now()
	secs := now.Sub(r.last).Seconds()
	r.last = now
	var out []*clusterv1.ComponentLoad
	for name, s := range r.l.Take() {
		cl := &clusterv1.ComponentLoad{Component: name, InFlight: uint32(s.PeakInFlight)}
		if secs > 0 {
			cl.Rate = float64(s.Requests) / secs
		}
		out = append(out, cl)
	}
	slices.SortFunc(out, func(a, b *clusterv1.ComponentLoad) int { return strings.Compare(a.Component, b.Component) })
	return out
}

// heldArtifacts lists the artifacts in this node's store, for placement preferences.
func (n *Node) heldArtifacts() []string {
	list, err := n.artifacts.List()
	if err != nil {
		return nil
	}
	return list
}
