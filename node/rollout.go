package node

import (
	"context"
	"fmt"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// rollouts is the leader's memory of rollouts under way: when it first saw each active
// deployment still short of running instances while an older one serves. It is soft state;
// a new leader starts the clock again.
type rollouts struct {
	since map[string]time.Time // by deployment id
}

// checkRollouts fails a rollout whose new instances are not all running RolloutDeadline
// after it began while an older deployment still serves: the older one is activated again
// (it never stopped serving) and the new one is marked failed with the reason.
func (n *Node) checkRollouts(ctx context.Context, now time.Time) {
	if n.rollouts.since == nil {
		n.rollouts.since = map[string]time.Time{}
	}
	s := n.fsm.Store.State()
	type tally struct {
		running int
		failure string
	}
	byDep := map[string]*tally{}
	for _, p := range s.Placements {
		if p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
			continue
		}
		t := byDep[p.DeploymentId]
		if t == nil {
			t = &tally{}
			byDep[p.DeploymentId] = t
		}
		switch p.Observed {
		case statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING:
			t.running++
		case statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED:
			t.failure = p.NodeId + ": " + p.Reason
		}
	}
	deps := map[string]*statev1.Deployment{}
	for _, d := range s.Deployments {
		deps[d.Id] = d
	}
	seen := map[string]bool{}
	for _, c := range s.Components {
		active := deps[c.ActiveDeploymentId]
		if active == nil || c.Desired != statev1.DesiredState_DESIRED_STATE_RUNNING {
			continue
		}
		// The previous version: the newest older deployment with an instance running.
		var prev *statev1.Deployment
		for _, d := range s.Deployments {
			if d.ComponentId == c.Id && d.Id != active.Id && byDep[d.Id] != nil && byDep[d.Id].running > 0 &&
				d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY && (prev == nil || d.CreateIndex > prev.CreateIndex) {
				prev = d
			}
		}
		cur := byDep[active.Id]
		if prev == nil || (cur != nil && cur.running >= int(c.Replicas)) {
			continue // nothing to fall back on, or the rollout is done
		}
		seen[active.Id] = true
		began, ok := n.rollouts.since[active.Id]
		if !ok {
			n.rollouts.since[active.Id] = now
			continue
		}
		deadline := n.cfg.Liveness.RolloutDeadline
		if now.Sub(began) < deadline {
			continue
		}
		running, reason := 0, "no instance became ready"
		if cur != nil {
			running = cur.running
			if cur.failure != "" {
				reason = cur.failure
			}
		}
		msg := fmt.Sprintf("rollout failed: %d/%d instances running after %s (%s); deployment %s keeps serving",
			running, c.Replicas, deadline, reason, prev.Id)
		n.log.Warn("rollout failed; keeping the previous deployment", "component", c.Name, "deployment", active.Id, "previous", prev.Id, "reason", reason)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := n.Apply(cctx, &statev1.Command{Op: &statev1.Command_ActivateDeployment{ActivateDeployment: &statev1.ActivateDeployment{ComponentId: c.Id, DeploymentId: prev.Id}}})
		cancel()
		if err != nil {
			n.log.Warn("fail rollout: re-activate the previous deployment", "component", c.Name, "err", err)
			continue // the next pass tries again
		}
		// The old version serves again; the new one must not be left "ready" without a reason.
		for attempt := 0; ; attempt++ {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = n.setDeploymentStatus(cctx, active.Id, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, msg)
			cancel()
			if err == nil || attempt == 4 || !sleepCtx(ctx, 200*time.Millisecond) {
				break
			}
		}
		if err != nil {
			n.log.Warn("fail rollout: mark the new deployment failed", "component", c.Name, "deployment", active.Id, "err", err)
			continue
		}
		n.logs.Append(c.Name, "", "system", msg)
	}
	for id := range n.rollouts.since {
		if !seen[id] {
			delete(n.rollouts.since, id)
		}
	}
}
