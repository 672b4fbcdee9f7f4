package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/tick"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// AutoscaleStore is what the Autoscaler reads and writes: the same as Rollouts.
type AutoscaleStore = RolloutStore

// LoadSource gives the components' load summed over the nodes' latest reports (Liveness
// does, from heartbeats).
type LoadSource interface {
	ComponentLoad(now time.Time) map[string]sched.Load
}

// AutoscaleConfig tunes the Autoscaler.
type AutoscaleConfig struct {
	Every  time.Duration // how often to decide
	Warmup time.Duration // no decision before every node has reported to this term (the TTL)
	Policy sched.Policy
}

// Autoscaler commits sched.Autoscale decisions from the nodes' load reports. Its soft state
// is the load window and the time of each component's last change; only decisions enter
// the log.
type Autoscaler struct {
	store AutoscaleStore
	load  LoadSource
	cfg   AutoscaleConfig
	log   *slog.Logger
	now   func() time.Time

	// Soft state of one term; only Run's goroutine touches it.
	start  time.Time
	scaled map[string]time.Time // last change per component
	win    loadWindow
}

// NewAutoscaler returns the autoscaling controller.
func NewAutoscaler(store AutoscaleStore, load LoadSource, cfg AutoscaleConfig, log *slog.Logger) *Autoscaler {
	return &Autoscaler{store: store, load: load, cfg: cfg, log: log, now: time.Now}
}

// Name implements Controller.
func (a *Autoscaler) Name() string { return "autoscale" }

// Run decides every interval for the term.
func (a *Autoscaler) Run(ctx context.Context) {
	a.begin(a.now())
	defer a.begin(time.Time{})
	tick.Every(ctx, a.cfg.Every, func() { a.Pass(ctx, a.now()) })
}

// begin starts a term's soft state at now (or drops it, with a zero time).
func (a *Autoscaler) begin(now time.Time) {
	a.start, a.scaled, a.win = now, map[string]time.Time{}, loadWindow{}
}

// Pass decides once and commits the decisions.
func (a *Autoscaler) Pass(ctx context.Context, now time.Time) {
	if a.scaled == nil {
		a.begin(now)
	}
	if now.Sub(a.start) < a.cfg.Warmup {
		return // until every node has heartbeated this leader, the load reports are partial
	}
	// Decide from the peak over the down cool-down, not the last sample: light or bursty
	// traffic must not look idle because one interval was quiet.
	window := max(1, int(a.cfg.Policy.DownCooldownOrDefault()/a.cfg.Every))
	load := a.win.add(a.load.ComponentLoad(now), window)
	var decisions []sched.Decision
	var read map[string]uint64 // the modify_index each decision was made from
	// A pure read of the live state (no deep copy per tick): decisions hold no pointer into it.
	a.store.ViewState(func(st *statev1.State) {
		decisions = sched.Autoscale(st, load, a.scaled, now, a.cfg.Policy)
		if len(decisions) == 0 {
			return
		}
		read = make(map[string]uint64, len(st.Components))
		for _, c := range st.Components {
			read[c.Name] = c.ModifyIndex
		}
	})
	for _, d := range decisions {
		// Conditional on that read: a change committed since (a user's scale) is not
		// overwritten with a count decided without it; the next pass decides again.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := a.store.Apply(cctx, &statev1.Command{Op: &statev1.Command_ScaleComponent{ScaleComponent: &statev1.ScaleComponent{
			Name: d.Component, Replicas: d.To, IfModifyIndex: read[d.Component],
		}}})
		cancel()
		if errors.Is(err, fsm.ErrConflict) {
			a.log.Debug("autoscale: changed since read; deciding again next pass", "component", d.Component, "to", d.To)
			continue
		}
		if err != nil {
			a.log.Warn("autoscale", "component", d.Component, "to", d.To, "err", err)
			continue
		}
		a.scaled[d.Component] = now
		l := load[d.Component]
		a.log.Info("autoscaled", "component", d.Component, "from", d.From, "to", d.To, "in_flight", l.InFlight, "rate", l.Rate)
		a.store.SystemLog(d.Component, fmt.Sprintf("autoscaled from %d to %d replicas (%.0f requests in flight, %.1f/s)", d.From, d.To, l.InFlight, l.Rate))
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
