// Package fsmtest writes short histories into a state machine for the tests of the packages
// that decide from its state (sched, leader): a node, a component, versions pushed and
// activated, placements and what their node observes, each one command as the product
// writes it. It applies through the function it is given (an fsm.Store, a fake Raft), so
// it needs no import of fsm. Never imported by the product.
package fsmtest

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Names the history uses: one wasm node and one component of one replica.
const (
	Node      = "n1"
	Component = "c1"
	Name      = "hello"
)

// History writes commands through apply; a command that fails ends the test.
type History struct {
	t     testing.TB
	apply func(*statev1.Command) error
	spec  *statev1.ComponentSpec
}

// New registers node Node and creates component Component (wasm, one replica, running,
// with spec).
func New(t testing.TB, apply func(*statev1.Command) error, spec *statev1.ComponentSpec) *History {
	t.Helper()
	h := &History{t: t, apply: apply, spec: spec}
	h.Apply(&statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
		Id: Node, ApiAddr: Node + ":7900", RaftAddr: Node + ":7901", ProxyAddr: Node + ":8080",
		Runtimes: []statev1.Runtime{statev1.Runtime_RUNTIME_WASM}}}}})
	h.Apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: Component, Name: Name, Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec, ManifestSpec: spec}}}})
	return h
}

// Apply applies cmd, stamped with the time now when it has none.
func (h *History) Apply(cmd *statev1.Command) {
	h.t.Helper()
	if cmd.Time == nil {
		cmd.Time = timestamppb.Now()
	}
	if err := h.apply(cmd); err != nil {
		h.t.Fatalf("apply %v: %v", cmd, err)
	}
}

// Deploy creates deployment id of the component and makes it ready and active, as a push
// does.
func (h *History) Deploy(id string) {
	h.t.Helper()
	h.Apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
		Id: id, ComponentId: Component, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING}}}})
	h.Apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: "sha256:" + id, Spec: h.spec, Activate: true}}})
}

// Place puts placement p of deployment dep on Node, desired d, at epoch.
func (h *History) Place(p, dep string, d statev1.PlacementDesired, epoch uint64) {
	h.t.Helper()
	h.Apply(&statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: []*statev1.Placement{{
		Id: p, ComponentId: Component, DeploymentId: dep, NodeId: Node, Desired: d, Epoch: epoch}}}}})
}

// Observe records what the node observes of placement p.
func (h *History) Observe(p string, o statev1.PlacementObserved) {
	h.t.Helper()
	h.Apply(&statev1.Command{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{Id: p, Observed: o}}})
}

// Runs places p of dep (desired RUN, epoch 1) and observes it RUNNING.
func (h *History) Runs(p, dep string) {
	h.t.Helper()
	h.Place(p, dep, statev1.PlacementDesired_PLACEMENT_DESIRED_RUN, 1)
	h.Observe(p, statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING)
}
