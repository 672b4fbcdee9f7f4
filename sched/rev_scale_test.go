package sched

import (
	"testing"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Scaling down (by hand or by the autoscaler) picks the instances to stop by node load
// and then by placement id only, never by what they are doing: from three instances, one
// crash-looping (FAILED) and two running, a scale to one stops the two running ones and
// keeps the one that does not serve. The component drops to no serving instance. Nomad
// and Kubernetes stop unhealthy/not-ready instances first when scaling down.
func TestRevScaleDownKeepsARunningInstance(t *testing.T) {
	s := world(1, node("a", wasm), node("b", wasm), node("c", wasm))
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	s.Placements = []*statev1.Placement{
		{Id: "d1-a-0", ComponentId: "c1", DeploymentId: "d1", NodeId: "a", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, Reason: "instance stopped"},
		{Id: "d1-b-0", ComponentId: "c1", DeploymentId: "d1", NodeId: "b", Desired: run, Observed: running},
		{Id: "d1-c-0", ComponentId: "c1", DeploymentId: "d1", NodeId: "c", Desired: run, Observed: running},
	}
	plan := Schedule(s)
	commit(s, plan)
	kept := 0
	for _, p := range s.Placements {
		if p.Desired == run && p.Observed == running {
			kept++
		}
	}
	if kept == 0 {
		t.Fatalf("scaled from 3 to 1, no running instance is kept: plan %v", plan.Put)
	}
}

// A placement whose instance keeps failing on its node (an artifact fetch that fails
// there, a full disk, a broken containerd that still lists the runtime) is never placed
// elsewhere: Schedule counts a FAILED placement as one of the replicas for as long as its
// node is ready. A served component with one replica stays down while another node could
// run it. Nomad reschedules failed allocations onto other nodes (reschedule policy).
func TestRevFailingPlacementIsReplacedElsewhere(t *testing.T) {
	s := world(1, node("a", wasm), node("b", wasm))
	s.Deployments[0].Served = true
	s.Placements = []*statev1.Placement{{Id: "d1-a-0", ComponentId: "c1", DeploymentId: "d1", NodeId: "a",
		Desired: statev1.PlacementDesired_PLACEMENT_DESIRED_RUN, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED,
		Reason: "artifact sha256:…: no space left on device"}}
	plan := Schedule(s)
	for _, p := range plan.Put {
		if p.NodeId == "b" && p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
			return
		}
	}
	t.Fatalf("the only instance fails on node a; the plan places nothing on node b: %+v", plan)
}
