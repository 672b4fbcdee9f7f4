package node

import (
	"context"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// schedulePause is the least time between two scheduling passes.
const schedulePause = 20 * time.Millisecond

// sleepCtx waits d, or less if ctx ends first; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// scheduleLoop runs the scheduler on the leader after every change of the state and commits
// its plan. Schedule is idempotent, so a plan applied once yields an empty plan next time.
func (n *Node) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		ch, _ := n.fsm.Store.Changed()
		if n.IsLeader() && !n.schedHold.Load() {
			n.scheduleOnce(ctx)
		}
		// At most one pass per schedulePause: a burst of writes is planned together, in few
		// Raft entries, instead of one full pass per write.
		if !sleepCtx(ctx, schedulePause) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
		}
	}
}

func (n *Node) scheduleOnce(ctx context.Context) {
	hints := sched.Hints{Artifacts: n.live.artifactHints()}
	var plan sched.Plan
	// The scheduler only reads, and its plan holds objects of its own: it runs on the live
	// state under the read lock instead of on a deep copy per pass.
	n.fsm.Store.ViewState(func(s *statev1.State) { plan = sched.ScheduleWith(s, hints) })
	if plan.Empty() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if len(plan.Put) > 0 {
		if _, err := n.Apply(cctx, &statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: plan.Put}}}); err != nil {
			n.log.Warn("commit placements", "err", err)
			return
		}
	}
	if len(plan.Delete) > 0 {
		if _, err := n.Apply(cctx, &statev1.Command{Op: &statev1.Command_DeletePlacements{DeletePlacements: &statev1.DeletePlacements{Ids: plan.Delete}}}); err != nil {
			n.log.Warn("delete placements", "err", err)
		}
	}
}
