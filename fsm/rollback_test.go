package fsm

import (
	"testing"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// `v9 rollback` while a push is being built: the operator rolls back from a broken d2 to
// d1; the build of d3, pushed before the rollback, then commits with Activate and takes
// over, because activation only yields to a *newer* active deployment (CreateIndex). The
// rollback is silently undone by a build it cannot see. Vercel, for one, turns automatic
// promotion off after an instant rollback until the user promotes again; at least a build
// that began before the rollback must not replace it.
func TestBuildFinishingAfterRollbackDoesNotUndoIt(t *testing.T) {
	st := NewStore()
	apply := applier(t, st)
	spec := &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: "hello.wasm"}}
	apply(cmdCreateComponent(&statev1.Component{Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec, ManifestSpec: spec}))
	pending := func(id string) {
		apply(cmdCreateDeployment(&statev1.Deployment{Id: id, ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
			Branch: "main", CommitSha: "sha-" + id}))
	}
	built := func(id string) {
		apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
			Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: "sha256:" + id, Spec: spec, Activate: true}}})
	}
	pending("d1")
	built("d1")
	pending("d2")
	built("d2")
	pending("d3") // pushed; its build runs
	apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: "d3", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING}}})
	apply(cmdActivate("c1", "d1")) // v9 rollback hello (what deployments.Rollback commits)
	built("d3")                    // the build ends
	c, _ := st.ComponentByID("c1")
	if c.ActiveDeploymentId != "d1" {
		t.Fatalf("active deployment %s after a rollback to d1 and then the end of a build begun before it", c.ActiveDeploymentId)
	}
}

// An activation that carries its deployment's spec (a rollback) gives the component that
// spec, the user's settings kept over it, without rolling (the activation replaces the
// instances anyway), in the same entry; a spec the runtime refuses fails it whole.
func TestActivateWithSpec(t *testing.T) {
	st := NewStore()
	apply := applier(t, st)
	spec := func(greeting string) *statev1.ComponentSpec {
		return &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Env: map[string]string{"GREETING": greeting}, Wasm: &statev1.WasmSpec{Module: "hello.wasm"}}
	}
	apply(cmdCreateComponent(&statev1.Component{Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec("one"), ManifestSpec: spec("one")}))
	for _, d := range []struct{ id, greeting string }{{"d1", "one"}, {"d2", "two"}} {
		apply(cmdCreateDeployment(&statev1.Deployment{Id: d.id, ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING}))
		apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
			Id: d.id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: "sha256:" + d.id, Spec: spec(d.greeting), Activate: true}}})
	}
	user := spec("two")
	user.ScaleMax = 5 // a user's setting
	apply(cmdUpdateSpec("hello", user))
	before, _ := st.Component("hello")

	bad := cmdActivate("c1", "d1")
	bad.GetActivateDeployment().Spec = &statev1.ComponentSpec{ScaleMin: 4, ScaleMax: 1}
	if err := st.Apply(100, bad); err == nil {
		t.Fatal("an activation with an invalid spec applied")
	}
	if c, _ := st.Component("hello"); !proto.Equal(c, before) {
		t.Fatalf("a refused activation changed the component: %v", c)
	}
	ok := cmdActivate("c1", "d1")
	ok.GetActivateDeployment().Spec = spec("one")
	if err := st.Apply(101, ok); err != nil {
		t.Fatal(err)
	}
	c, _ := st.Component("hello")
	if c.ActiveDeploymentId != "d1" || c.ManifestSpec.Env["GREETING"] != "one" || c.Spec.Env["GREETING"] != "one" || c.Spec.ScaleMax != 5 ||
		c.SpecIndex != before.SpecIndex || c.RollbackIndex != 101 || c.PrevSpec != nil {
		t.Fatalf("after the activation: %v", c)
	}
}
