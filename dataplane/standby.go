package dataplane

import (
	"context"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// standbyPruner is an executor that keeps instances prepared at rest for the next start of
// a component on this node (the container executor's standby containers); the reconciler
// tells it, after every pass, which it still wants.
type standbyPruner interface {
	PruneStandby(ctx context.Context, keep func(component, deploymentID string, specIndex uint64) bool)
}

// pruneStandby has the executors drop the standby instances this node no longer wants.
func (r *reconciler) pruneStandby(ctx context.Context) {
	for _, ex := range r.execs {
		if p, ok := ex.(standbyPruner); ok {
			p.PruneStandby(ctx, r.wantStandby)
		}
	}
}

// wantStandby says whether this node keeps a standby instance of a component's deployment,
// prepared for the component's spec at specIndex: while the node is neither removed nor
// draining, the deployment is the component's active one, its spec has not changed since
// (a standby prepared with old variables or secrets is dropped at once, not left holding
// them until the next start), the component is not exclusive, and it may start here next
// — it is paused, or at zero, or runs here (a scale-up), but not when it runs only
// elsewhere (it moved).
func (r *reconciler) wantStandby(component, deploymentID string, specIndex uint64) bool {
	st := r.dp.state()
	if r.dp.IsRemoved() {
		return false
	}
	if n, err := st.Node(r.dp.cfg.NodeID); err == nil && n.GetDrain() {
		return false
	}
	c, err := st.Component(component)
	if err != nil || c.ActiveDeploymentId != deploymentID || c.SpecIndex != specIndex || c.GetSpec().GetExclusive() {
		return false
	}
	if c.Desired == statev1.DesiredState_DESIRED_STATE_PAUSED {
		return true
	}
	here, elsewhere := 0, 0
	for _, p := range st.Placements("") {
		if p.ComponentId != c.Id || p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
			continue
		}
		if p.NodeId == r.dp.cfg.NodeID {
			here++
		} else {
			elsewhere++
		}
	}
	return here > 0 || elsewhere == 0
}
