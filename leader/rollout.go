package leader

import (
	"context"
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

// Rollouts fails a rollout whose new instances are not all running Deadline after it began
// while an older deployment still serves (sched.Rollouts decides): the older one is
// activated again (it never stopped serving) and the new one is marked failed with the
// reason. Its soft state is the clock of each rollout under way; a new term starts it again.
type Rollouts struct {
	store    RolloutStore
	every    time.Duration
	deadline time.Duration
	log      *slog.Logger
	now      func() time.Time

	began map[string]time.Time // by deployment id; only Run's goroutine touches it
}

// NewRollouts returns the rollout controller, which checks every interval.
func NewRollouts(store RolloutStore, every, deadline time.Duration, log *slog.Logger) *Rollouts {
	return &Rollouts{store: store, every: every, deadline: deadline, log: log, now: time.Now}
}

// Name implements Controller.
func (r *Rollouts) Name() string { return "rollouts" }

// Run checks the rollouts every interval for the term.
func (r *Rollouts) Run(ctx context.Context) {
	r.began = nil
	defer func() { r.began = nil }()
	tick.Every(ctx, r.every, func() { r.Check(ctx, r.now()) })
}

// Check fails the rollouts that missed their deadline.
func (r *Rollouts) Check(ctx context.Context, now time.Time) {
	var failed []sched.RolloutFailure
	var began map[string]time.Time
	// A pure read of the live state (no deep copy per tick): the decisions hold no pointer
	// into it.
	r.store.ViewState(func(st *statev1.State) { failed, began = sched.Rollouts(st, r.began, now, r.deadline) })
	r.began = began
	for _, f := range failed {
		r.fail(ctx, f)
	}
}

// failBudget bounds how long a failing rollout's two writes may outlive the term.
const failBudget = 15 * time.Second

func (r *Rollouts) fail(ctx context.Context, f sched.RolloutFailure) {
	r.log.Warn("rollout failed; keeping the previous deployment", "component", f.Component, "deployment", f.Deployment, "previous", f.Previous, "reason", f.Reason)
	// The decision is two writes (re-activate the previous deployment, then fail the new
	// one), and only the first is visible to the next leader's sched.Rollouts, which looks
	// at active deployments: once begun it is finished even if the term ends meanwhile
	// (Apply forwards to whoever leads), or the new deployment would stay "ready" with no
	// reason; failBudget bounds how long it holds up the end of the term.
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), failBudget)
	defer stop()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := r.store.Apply(cctx, &statev1.Command{Op: &statev1.Command_ActivateDeployment{ActivateDeployment: &statev1.ActivateDeployment{ComponentId: f.ComponentID, DeploymentId: f.Previous}}})
	cancel()
	if err != nil {
		r.log.Warn("fail rollout: re-activate the previous deployment", "component", f.Component, "err", err)
		return // the next pass tries again
	}
	// The old version serves again; the new one must not be left "ready" without a reason.
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = r.store.Apply(cctx, &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
			Id: f.Deployment, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, Error: f.Message,
		}}})
		cancel()
		if err == nil || attempt == 4 || !tick.Sleep(ctx, 200*time.Millisecond) {
			break
		}
	}
	if err != nil {
		r.log.Warn("fail rollout: mark the new deployment failed", "component", f.Component, "deployment", f.Deployment, "err", err)
		return
	}
	r.store.SystemLog(f.Component, f.Message)
}
