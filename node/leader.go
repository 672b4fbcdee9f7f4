package node

import (
	"context"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

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
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
		}
	}
}

func (n *Node) scheduleOnce(ctx context.Context) {
	plan := sched.ScheduleWith(n.fsm.Store.State(), sched.Hints{Artifacts: n.live.artifactHints()})
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
