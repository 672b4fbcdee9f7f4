package node

import (
	"context"
	"fmt"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// load sums the components' load over the latest report of each node heard within ttl.
func (l *liveness) componentLoad(now time.Time, ttl time.Duration) map[string]sched.Load {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]sched.Load{}
	for id, reports := range l.load {
		if now.Sub(l.heard[id]) > ttl {
			continue
		}
		for _, r := range reports {
			s := out[r.Component]
			s.InFlight += float64(r.InFlight)
			s.Rate += r.Rate
			out[r.Component] = s
		}
	}
	return out
}

// autoscale commits the scheduler's replica decisions from the nodes' load reports. The
// reports and the cool-down clock are the leader's soft state; only decisions enter the log.
func (n *Node) autoscale(ctx context.Context, now time.Time) {
	if n.scaled == nil {
		n.scaled = map[string]time.Time{}
	}
	if since := n.live.leaderSince(); now.Sub(since) < n.cfg.Liveness.TTL {
		return // until every node has heartbeated this leader, the load reports are partial
	}
	// Decide from the peak over the down cool-down, not the last sample: light or bursty
	// traffic must not look idle because one interval was quiet.
	window := max(1, int(n.cfg.Autoscale.DownCooldownOrDefault()/(4*n.cfg.Liveness.HeartbeatInterval)))
	load := n.loadWin.add(n.live.componentLoad(now, n.cfg.Liveness.TTL), window)
	for _, d := range sched.Autoscale(n.fsm.Store.State(), load, n.scaled, now, n.cfg.Autoscale) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := n.Apply(cctx, &statev1.Command{Op: &statev1.Command_ScaleComponent{ScaleComponent: &statev1.ScaleComponent{Name: d.Component, Replicas: d.To}}})
		cancel()
		if err != nil {
			n.log.Warn("autoscale", "component", d.Component, "to", d.To, "err", err)
			continue
		}
		n.scaled[d.Component] = now
		l := load[d.Component]
		n.log.Info("autoscaled", "component", d.Component, "from", d.From, "to", d.To, "in_flight", l.InFlight, "rate", l.Rate)
		n.logs.Append(d.Component, "", "system", fmt.Sprintf("autoscaled from %d to %d replicas (%.0f requests in flight, %.1f/s)", d.From, d.To, l.InFlight, l.Rate))
	}
}

// loadWindow keeps the last samples of the components' load; add returns the peak over them.
type loadWindow struct {
	samples []map[string]sched.Load
}

func (w *loadWindow) add(m map[string]sched.Load, size int) map[string]sched.Load {
	w.samples = append(w.samples, m)
	if len(w.samples) > size {
		w.samples = w.samples[len(w.samples)-size:]
	}
	out := map[string]sched.Load{}
	for _, s := range w.samples {
		for name, l := range s {
			o := out[name]
			o.InFlight, o.Rate = max(o.InFlight, l.InFlight), max(o.Rate, l.Rate)
			out[name] = o
		}
	}
	return out
}
