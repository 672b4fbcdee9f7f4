package main

import (
	"testing"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func TestRollOutcome(t *testing.T) {
	const run, stop = statev1.PlacementDesired_PLACEMENT_DESIRED_RUN, statev1.PlacementDesired_PLACEMENT_DESIRED_STOP
	const up, starting = statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING, statev1.PlacementObserved_PLACEMENT_OBSERVED_STARTING
	comp := func(mod func(c *statev1.Component)) *statev1.Component {
		c := &statev1.Component{SpecIndex: 10, ActiveDeploymentId: "d1", Desired: statev1.DesiredState_DESIRED_STATE_RUNNING}
		if mod != nil {
			mod(c)
		}
		return c
	}
	pl := func(dep string, spec uint64, d statev1.PlacementDesired, o statev1.PlacementObserved) *statev1.Placement {
		return &statev1.Placement{DeploymentId: dep, SpecIndex: spec, Desired: d, Observed: o}
	}
	status := func(wanted uint32, ps ...*statev1.Placement) *componentv1.ComponentStatus {
		return &componentv1.ComponentStatus{Wanted: wanted, Placements: ps}
	}
	for _, tc := range []struct {
		name    string
		c       *statev1.Component
		st      *componentv1.ComponentStatus
		want    rollState
		running uint32
	}{
		{"old instances only", comp(nil), status(2, pl("d1", 9, run, up), pl("d1", 9, run, up)), rolling, 0},
		{"one new running, one starting", comp(nil), status(2, pl("d1", 10, run, up), pl("d1", 10, run, starting), pl("d1", 9, run, up)), rolling, 1},
		{"a new one of another deployment does not count", comp(nil), status(1, pl("d0", 10, run, up)), rolling, 0},
		{"a new one stopping does not count", comp(nil), status(1, pl("d1", 10, stop, up)), rolling, 0},
		{"every wanted instance runs the change", comp(nil), status(2, pl("d1", 10, run, up), pl("d1", 10, run, up), pl("d1", 9, stop, up)), rolled, 2},
		{"undone by the leader", comp(func(c *statev1.Component) { c.SpecIndex, c.SpecError = 9, "every new instance failed" }), status(2, pl("d1", 9, run, up)), rollFailed, 0},
		{"failure recorded", comp(func(c *statev1.Component) { c.SpecError = "every new instance failed" }), status(1), rollFailed, 0},
		{"replaced by a later change", comp(func(c *statev1.Component) { c.SpecIndex = 12 }), status(1), rollNewer, 0},
		{"paused", comp(func(c *statev1.Component) { c.Desired = statev1.DesiredState_DESIRED_STATE_PAUSED }), status(0), rollIdle, 0},
		{"scaled to zero", comp(nil), status(0), rollIdle, 0},
		{"never deployed", comp(func(c *statev1.Component) { c.ActiveDeploymentId = "" }), status(1), rollIdle, 0},
	} {
		got, running := rollOutcome(tc.c, tc.st, 10)
		if got != tc.want || running != tc.running {
			t.Errorf("%s: got %d (%d running), want %d (%d running)", tc.name, got, running, tc.want, tc.running)
		}
	}
}
