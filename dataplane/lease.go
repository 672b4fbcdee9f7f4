package dataplane

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/velocity9/v9/internal/tick"
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
func (dp *DataPlane) leaseHeld() bool { return dp.lease.held(time.Now(), dp.cfg.Lease) }

// heartbeatLoop sends a heartbeat with this node's load to the leader every interval (to
// itself when it leads) and renews the lease on each answer, once this node has applied
// the leader's index from the answer. When the lease runs out or comes back, it wakes the
// reconciler, which stops or restarts exclusive instances.
func (dp *DataPlane) heartbeatLoop(ctx context.Context) {
	every := dp.cfg.HeartbeatInterval
	t := time.NewTicker(every)
	defer t.Stop()
	was := false
	for {
		sent := time.Now()
		if dp.IsRemoved() {
			if !tick.Sleep(ctx, every) {
				return
			}
			continue
		}
		req := &clusterv1.HeartbeatRequest{NodeId: dp.cfg.NodeID, Load: dp.load.take(), Artifacts: dp.Held()}
		for _, v := range dp.versions.Counts() {
			req.Versions = append(req.Versions, &clusterv1.VersionCounts{DeploymentId: v.Deployment, Requests: v.Requests, Errors: v.Errors})
		}
		if idx, err := dp.cfg.Cluster.Heartbeat(ctx, req, 2*every); err != nil {
			dp.log.Debug("heartbeat", "err", err)
		} else {
			// Renew (from the send time) once this node has applied what the leader had:
			// usually a round trip later under steady writes.
			wctx, cancel := context.WithTimeout(ctx, every)
			if got, _ := dp.cfg.Store.WaitForIndex(wctx, idx); got >= idx {
				dp.lease.renew(sent)
				dp.caughtUp("leader's heartbeat answer")
			}
			cancel()
		}
		if held := dp.leaseHeld(); held != was {
			was = held
			if !held {
				dp.log.Warn("lease lost: cannot reach the leader; exclusive instances stop", "lease", dp.cfg.Lease)
			}
			dp.rec.poke()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
