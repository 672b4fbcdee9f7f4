package leader

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/velocity9/v9/internal/tick"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// RolloutStore is what Rollouts reads and writes.
type RolloutStore interface {
	// ViewState calls f with the live state under the store's read lock (fsm.Store).
	ViewState(f func(*statev1.State))
	Apply(ctx context.Context, cmd *statev1.Command) (uint64, error)
	// SystemLog appends a line to a component's log.
	SystemLog(component, line string)
}

// VersionCounter gives what the proxies counted per deployment, summed over the nodes
// (Liveness, from the heartbeats).
type VersionCounter interface {
	VersionCounts() map[string]sched.Counts
}

// Rollouts fails a rollout whose new instances are not all running Deadline after it began
// while an older deployment still serves, or at once when every new instance failed or no
// node can run it (sched.Rollouts decides): the older one is activated again (it never
// stopped serving) and the new one is marked failed with the reason; a first deployment
// that never served is failed and deactivated. It also judges canaries (sched.Canaries,
// sched.JudgeCanary): once a canary's instances are all ready its window starts
// (StartCanary, in the state, so a new leader continues it), and at its end (or at once
// when it errs badly) it is promoted (EndCanary) or failed like a rollout, with the
// proxies' figures as the reason. Its soft state is the clock of each rollout under way and
// the previous version's counts when each canary's window started; a new term starts both
// again. A change of env, secrets or limits that rolls the instances is
// judged the same way, and a failed one is undone (FailSpecRoll), the instances made before
// it serving on.
type Rollouts struct {
	store    RolloutStore
	counts   VersionCounter
	every    time.Duration
	deadline time.Duration
	maxWin   time.Duration
	log      *slog.Logger
	now      func() time.Time

	// Only Run's goroutine touches these.
	termStart time.Time
	began     map[string]time.Time  // by deployment id
	bases     map[string]canaryBase // by canary deployment id
}

// canaryBase is what the proxies had counted for a canary's previous version when this
// term started its window: the baseline is what that version answered since.
type canaryBase struct {
	previous string
	counts   sched.Counts
}

// RolloutConfig tunes Rollouts.
type RolloutConfig struct {
	Every    time.Duration // how often it checks
	Deadline time.Duration // how long a rollout may take to get its instances running
	// CanaryWindowMax, when set, caps every canary's window (test clusters).
	CanaryWindowMax time.Duration
}

// NewRollouts returns the rollout controller. counts may be nil (no figures: canaries pass).
func NewRollouts(store RolloutStore, counts VersionCounter, cfg RolloutConfig, log *slog.Logger) *Rollouts {
	return &Rollouts{store: store, counts: counts, every: cfg.Every, deadline: cfg.Deadline, maxWin: cfg.CanaryWindowMax, log: log, now: time.Now}
}

// Name implements Controller.
func (r *Rollouts) Name() string { return "rollouts" }

// Run checks the rollouts every interval for the term.
func (r *Rollouts) Run(ctx context.Context) {
	r.began, r.bases, r.termStart = nil, nil, r.now()
	defer func() { r.began, r.bases = nil, nil }()
	tick.Every(ctx, r.every, func() { r.Check(ctx, r.now()) })
}

// Check fails the rollouts that missed their deadline or cannot succeed, and judges the
// canaries.
func (r *Rollouts) Check(ctx context.Context, now time.Time) {
	var failed []sched.RolloutFailure
	var began map[string]time.Time
	var canaries []sched.Canary
	// A pure read of the live state (no deep copy per tick): the decisions hold no pointer
	// into it.
	r.store.ViewState(func(st *statev1.State) {
		failed, began = sched.Rollouts(st, r.began, now, r.deadline)
		canaries = sched.Canaries(st)
	})
	r.began = began
	for _, f := range failed {
		r.fail(ctx, f)
	}
	r.judgeCanaries(ctx, canaries, now)
}

func (r *Rollouts) judgeCanaries(ctx context.Context, canaries []sched.Canary, now time.Time) {
	if now.Sub(r.termStart) < 2*r.every {
		return // a new term: let every node's counts arrive first
	}
	var counts map[string]sched.Counts
	if r.counts != nil {
		counts = r.counts.VersionCounts()
	}
	bases := map[string]canaryBase{} // those of the canaries under way only
	for _, k := range canaries {
		if b, ok := r.bases[k.Deployment]; ok {
			bases[k.Deployment] = b
		}
	}
	r.bases = bases
	for _, k := range canaries {
		if r.maxWin > 0 {
			k.Window = min(k.Window, r.maxWin)
		}
		if !k.Ready {
			continue // the rollout deadline watches it meanwhile
		}
		if k.Start.IsZero() {
			// The window starts now, in the state: a new leader continues it.
			if err := r.apply(ctx, &statev1.Command{Op: &statev1.Command_StartCanary{StartCanary: &statev1.StartCanary{DeploymentId: k.Deployment}}}); err != nil {
				r.log.Warn("start canary", "component", k.Component, "deployment", k.Deployment, "err", err)
				continue
			}
			bases[k.Deployment] = canaryBase{previous: k.Previous, counts: counts[k.Previous]}
			r.log.Info("canary started", "component", k.Component, "deployment", k.Deployment, "percent", k.Percent, "window", k.Window)
			r.store.SystemLog(k.Component, fmt.Sprintf("canary: deployment %s takes %d%% of the requests for %s", k.Deployment, k.Percent, k.Window))
			continue
		}
		// The new version's counts are all from its canary (readiness requests are not
		// counted); the baseline is what the previous version answered since the window
		// began, or, when this term did not see it begin (a new leader) or the previous
		// version changed since, over its lifetime. Failed versions never count.
		fresh, old := counts[k.Deployment], counts[k.Previous]
		if b, ok := bases[k.Deployment]; ok && b.previous == k.Previous {
			old = old.Since(b.counts)
		}
		verdict, figures := sched.JudgeCanary(k, fresh, old, now.Sub(k.Start))
		switch {
		case verdict == sched.Wait:
		case verdict == sched.Fail && k.Previous != "":
			keeps := "keeps serving"
			if !k.PreviousRuns {
				keeps = "serves again"
			}
			r.fail(ctx, sched.RolloutFailure{ComponentID: k.ComponentID, Component: k.Component, Deployment: k.Deployment,
				Previous: k.Previous, Reason: figures,
				Message: fmt.Sprintf("canary failed: %s; deployment %s %s", figures, k.Previous, keeps)})
		case verdict == sched.Fail:
			// Nothing older to fall back on (every older version failed or is gone): the
			// new version keeps all the traffic rather than none, and says so.
			if r.endCanary(ctx, k) {
				r.log.Warn("canary failed; nothing older to fall back on", "component", k.Component, "deployment", k.Deployment, "figures", figures)
				r.store.SystemLog(k.Component, "canary failed: "+figures+"; no older version to fall back on: deployment "+k.Deployment+" keeps serving")
			}
		default:
			if r.endCanary(ctx, k) {
				r.log.Info("canary passed", "component", k.Component, "deployment", k.Deployment, "figures", figures)
				r.store.SystemLog(k.Component, "canary passed: "+figures)
			}
		}
	}
}

// endCanary gives k's new version all the traffic (EndCanary); false when the write failed
// (the next pass tries again).
func (r *Rollouts) endCanary(ctx context.Context, k sched.Canary) bool {
	if err := r.apply(ctx, &statev1.Command{Op: &statev1.Command_EndCanary{EndCanary: &statev1.EndCanary{DeploymentId: k.Deployment}}}); err != nil {
		r.log.Warn("end canary", "component", k.Component, "deployment", k.Deployment, "err", err)
		return false
	}
	return true
}

func (r *Rollouts) apply(ctx context.Context, cmd *statev1.Command) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := r.store.Apply(cctx, cmd)
	return err
}

// failBudget bounds how long a failing rollout's two writes may outlive the term.
const failBudget = 15 * time.Second

// failCommand is the one entry that records f: a failed change of env, secrets or limits
// is undone (FailSpecRoll); a failed deployment is failed and the previous one activated
// again.
func failCommand(f sched.RolloutFailure) *statev1.Command {
	if f.SpecIndex != 0 {
		return &statev1.Command{Op: &statev1.Command_FailSpecRoll{FailSpecRoll: &statev1.FailSpecRoll{
			ComponentId: f.ComponentID, SpecIndex: f.SpecIndex, Error: f.Message,
		}}}
	}
	return &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: f.Deployment, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, Error: f.Message,
		Fallback: f.Previous, Deactivate: f.Deactivate,
	}}}
}

func (r *Rollouts) fail(ctx context.Context, f sched.RolloutFailure) {
	r.log.Warn("rollout failed; keeping the previous version", "component", f.Component, "deployment", f.Deployment, "previous", f.Previous,
		"spec_index", f.SpecIndex, "reason", f.Reason)
	// One entry fails the new deployment and activates the previous one again (or, for a
	// first deployment, leaves none active): nobody sees one without the other. Once begun it
	// is finished even if the term ends meanwhile (Apply forwards to whoever leads);
	// failBudget bounds how long it holds up the end of the term.
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), failBudget)
	defer stop()
	var err error
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = r.store.Apply(cctx, failCommand(f))
		cancel()
		if err == nil || attempt == 4 || !tick.Sleep(ctx, 200*time.Millisecond) {
			break
		}
	}
	if err != nil {
		r.log.Warn("fail rollout", "component", f.Component, "deployment", f.Deployment, "err", err)
		return // the next pass decides again
	}
	r.store.SystemLog(f.Component, f.Message)
}
