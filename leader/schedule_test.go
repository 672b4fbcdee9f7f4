package leader

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// TestSchedulerIncrementalMatchesFullPass: after every few writes of random histories, the
// scheduler's pass (planning only the components touched since its last pass, and those
// whose last plan was not empty) gives exactly the plan of sched.ScheduleWith over the
// whole state. Histories create, scale, pause, change the spec or secrets of and delete components
// (some exclusive); create, activate, fail and canary deployments; observe placements
// running, stopped, failed and lost; mark nodes down, draining and ready, and remove one.
// Plans are committed, or sometimes dropped as if their commit failed; hints change.
func TestSchedulerIncrementalMatchesFullPass(t *testing.T) {
	for seed := uint64(1); seed <= 25; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { scheduleHistory(t, seed, 250) })
	}
}

func scheduleHistory(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 11))
	f := newFake(t, &statev1.State{Index: 1})
	s := NewScheduler(f, nil, quiet())
	ctx := context.Background()
	apply := func(cmd *statev1.Command) {
		_, _ = f.Apply(ctx, cmd) // random histories hold refused commands: they change nothing
	}
	nodes := []string{"a", "b", "c", "d"}
	for _, n := range nodes {
		apply(&statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
			Id: n, ApiAddr: n + ":7900", RaftAddr: n + ":7901", ProxyAddr: n + ":8080", Status: statev1.NodeStatus_NODE_STATUS_READY,
			Runtimes: []statev1.Runtime{wasm, statev1.Runtime_RUNTIME_CONTAINER},
		}}}})
	}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	names := []string{"w", "x", "y", "z", "v"}
	digests := []string{"sha256:1", "sha256:2"}
	ids := map[string]string{} // name -> id
	deps := map[string][]string{}
	anyComp := func() (string, string, bool) {
		for name, id := range ids {
			return name, id, true
		}
		return "", "", false
	}
	planned, placed := 0, 0
	for step := 0; step < steps; step++ {
		seq := fmt.Sprint(step)
		name, id, ok := anyComp()
		switch k := rng.IntN(16); {
		case k <= 1 || !ok:
			n := pick(names)
			excl := rng.IntN(4) == 0
			c := &statev1.Component{Id: "c" + seq, Name: n, Runtime: wasm, Replicas: uint32(1 + rng.IntN(3)),
				Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
				Spec:    &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 3, Exclusive: excl, Wasm: &statev1.WasmSpec{Module: "m.wasm"}}}
			if excl {
				c.Replicas, c.Spec.ScaleMax = 1, 1
			}
			apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: c}}})
			if got, err := f.st.Component(n); err == nil && got.Id == c.Id {
				ids[n] = c.Id
			}
		case k == 2:
			apply(&statev1.Command{Op: &statev1.Command_DeleteComponent{DeleteComponent: &statev1.DeleteComponent{Name: name}}})
			delete(ids, name)
		case k == 3:
			d := []statev1.DesiredState{statev1.DesiredState_DESIRED_STATE_PAUSED, statev1.DesiredState_DESIRED_STATE_RUNNING}[rng.IntN(3)/2]
			apply(&statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{Name: name, Desired: d}}})
		case k == 4:
			apply(&statev1.Command{Op: &statev1.Command_ScaleComponent{ScaleComponent: &statev1.ScaleComponent{Name: name, Replicas: uint32(rng.IntN(4))}}})
		case k == 5:
			c, _ := f.st.Component(name)
			sp := proto.Clone(c.GetSpec()).(*statev1.ComponentSpec)
			if sp != nil {
				sp.Env = map[string]string{"V": seq}
				apply(&statev1.Command{Op: &statev1.Command_UpdateComponentSpec{UpdateComponentSpec: &statev1.UpdateComponentSpec{Name: name, Spec: sp}}})
			}
		case k == 6 && rng.IntN(2) == 0: // a secret moves the spec index: instances roll
			apply(&statev1.Command{Op: &statev1.Command_PutSecret{PutSecret: &statev1.PutSecret{
				Component: name, Name: "S", KeyId: "k", Nonce: []byte{1}, Ciphertext: []byte(seq)}}})
		case k <= 7:
			did := "d" + seq
			apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
				Id: did, ComponentId: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: pick(digests)}}}})
			deps[id] = append(deps[id], did)
			apply(&statev1.Command{Op: &statev1.Command_ActivateDeployment{ActivateDeployment: &statev1.ActivateDeployment{ComponentId: id, DeploymentId: did}}})
		case k == 8 && len(deps[id]) > 0:
			st := []statev1.DeploymentStatus{statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY}[rng.IntN(2)]
			apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{Id: pick(deps[id]), Status: st}}})
		case k == 9 && len(deps[id]) > 0:
			if rng.IntN(2) == 0 {
				apply(&statev1.Command{Op: &statev1.Command_StartCanary{StartCanary: &statev1.StartCanary{DeploymentId: pick(deps[id])}}})
			} else {
				apply(&statev1.Command{Op: &statev1.Command_EndCanary{EndCanary: &statev1.EndCanary{DeploymentId: pick(deps[id])}}})
			}
		case k <= 12:
			if ps := f.st.Placements(""); len(ps) > 0 {
				o := []statev1.PlacementObserved{statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING, statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING,
					statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED, statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED,
					statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST}[rng.IntN(5)]
				apply(&statev1.Command{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{Id: ps[rng.IntN(len(ps))].Id, Observed: o}}})
			}
		case k <= 14:
			st := []statev1.NodeStatus{statev1.NodeStatus_NODE_STATUS_DOWN, statev1.NodeStatus_NODE_STATUS_DRAINING, statev1.NodeStatus_NODE_STATUS_READY, statev1.NodeStatus_NODE_STATUS_READY}[rng.IntN(4)]
			apply(&statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{Id: pick(nodes), Status: st}}})
		case k == 15 && step == steps/2:
			apply(&statev1.Command{Op: &statev1.Command_RemoveNode{RemoveNode: &statev1.RemoveNode{Id: "d"}}})
		}
		if rng.IntN(3) == 0 && step != steps-1 {
			continue // several writes between two passes, as under a burst
		}
		h := sched.Hints{Artifacts: map[string]map[string]bool{pick(nodes): {pick(digests): true}}}
		var got sched.Plan
		s.mu.Lock()
		f.st.View(func(v fsm.View) { got = s.plan(v, h) })
		s.mu.Unlock()
		want := sched.ScheduleWith(f.st.State(), h)
		if !samePlan(got, want) {
			t.Fatalf("step %d: incremental plan\n%v\nfull pass\n%v", step, got, want)
		}
		if !want.Empty() {
			planned++
			placed += len(want.Put)
		}
		if rng.IntN(5) == 0 {
			continue // as if the commit failed: the state stays as it was
		}
		if len(got.Put) > 0 {
			apply(&statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: got.Put}}})
		}
		if len(got.Delete) > 0 {
			apply(&statev1.Command{Op: &statev1.Command_DeletePlacements{DeletePlacements: &statev1.DeletePlacements{Ids: got.Delete}}})
		}
	}
	t.Logf("%d plans, %d placements put", planned, placed)
	if planned < 10 || placed < 10 {
		t.Fatalf("the history planned too little to test anything: %d plans, %d placements put", planned, placed)
	}
}

func samePlan(a, b sched.Plan) bool {
	return slices.Equal(a.Delete, b.Delete) && slices.EqualFunc(a.Put, b.Put, func(x, y *statev1.Placement) bool { return proto.Equal(x, y) })
}
