package fsm

import (
	"testing"

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
