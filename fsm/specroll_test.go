package fsm

import (
	"testing"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func cmdFailSpecRoll(id string, index uint64, msg string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_FailSpecRoll{FailSpecRoll: &statev1.FailSpecRoll{ComponentId: id, SpecIndex: index, Error: msg}}}
}

// A change that rolls the instances keeps what the component was before it; FailSpecRoll
// returns to that (spec, user settings, spec_index) and records the error, which the next
// rolling change clears; a FailSpecRoll of a change since superseded does nothing.
func TestFailSpecRoll(t *testing.T) {
	st := NewStore()
	if err := st.Apply(1, cmdCreateComponent(webComponent())); err != nil {
		t.Fatal(err)
	}
	before, _ := st.Component("web")
	s := proto.Clone(before.Spec).(*statev1.ComponentSpec)
	s.Env = map[string]string{"BROKEN": "1"}
	if err := st.Apply(5, cmdUpdateSpec("web", s)); err != nil {
		t.Fatal(err)
	}
	c, _ := st.Component("web")
	if c.SpecIndex != 5 || c.PrevSpecIndex != before.SpecIndex || !proto.Equal(c.PrevSpec, before.Spec) || c.User.GetEnv()["BROKEN"] != "1" {
		t.Fatalf("after the change: %v", c)
	}
	if err := st.Apply(6, cmdFailSpecRoll("c-web", 4, "stale")); err != nil { // not the current change
		t.Fatal(err)
	}
	if c, _ := st.Component("web"); c.SpecIndex != 5 || c.SpecError != "" {
		t.Fatalf("a stale FailSpecRoll changed the component: %v", c)
	}
	if err := st.Apply(7, cmdFailSpecRoll("c-web", 5, "every new instance failed")); err != nil {
		t.Fatal(err)
	}
	c, _ = st.Component("web")
	if c.SpecIndex != before.SpecIndex || !proto.Equal(c.Spec, before.Spec) || len(c.User.GetEnv()) != 0 ||
		c.SpecError != "every new instance failed" || c.PrevSpec != nil || c.ModifyIndex != 7 {
		t.Fatalf("after FailSpecRoll: %v", c)
	}
	// Nothing left to undo.
	if err := st.Apply(8, cmdFailSpecRoll("c-web", before.SpecIndex, "again")); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Component("web"); c.SpecError != "every new instance failed" {
		t.Fatalf("undone twice: %v", c)
	}
	// A secret change rolls the instances too, and clears the error.
	if err := st.Apply(9, cmdPutSecret("web", "TOKEN", []byte("sealed"))); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Component("web"); c.SpecIndex != 9 || c.SpecError != "" || c.PrevSpecIndex != before.SpecIndex || !proto.Equal(c.PrevSpec, before.Spec) {
		t.Fatalf("after a secret change: %v", c)
	}
	if err := st.Apply(10, cmdFailSpecRoll("nosuch", 9, "x")); err == nil {
		t.Fatal("FailSpecRoll of an unknown component applied")
	}
}

// A rollback's spec (from_manifest) is not undone apart from its deployment: it forgets
// what came before.
func TestFailSpecRollNotAfterRollback(t *testing.T) {
	st := NewStore()
	if err := st.Apply(1, cmdCreateComponent(webComponent())); err != nil {
		t.Fatal(err)
	}
	c, _ := st.Component("web")
	s := proto.Clone(c.Spec).(*statev1.ComponentSpec)
	s.Env = map[string]string{"A": "1"}
	if err := st.Apply(2, cmdUpdateSpec("web", s)); err != nil {
		t.Fatal(err)
	}
	m := proto.Clone(c.Spec).(*statev1.ComponentSpec)
	m.MemoryBytes = 64 << 20
	cmd := cmdUpdateSpec("web", m)
	cmd.GetUpdateComponentSpec().FromManifest = true
	if err := st.Apply(3, cmd); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Component("web"); c.SpecIndex != 3 || c.PrevSpec != nil {
		t.Fatalf("after a rollback's spec: spec_index %d, prev %v", c.SpecIndex, c.PrevSpec)
	}
	if err := st.Apply(4, cmdFailSpecRoll("c-web", 3, "x")); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Component("web"); c.SpecIndex != 3 || c.SpecError != "" || c.Spec.MemoryBytes != 64<<20 {
		t.Fatalf("a rollback's spec was undone: %v", c)
	}
}

// A FailSpecRoll decided by the rollout controller just before a push activates a new
// deployment, and committed just after, still applies (it checks only spec_index, which an
// activation does not move): the component returns to prev_spec, the old deployment's
// manifest with the old settings, while the new deployment is active. The new version's
// instances then start with the old manifest (its wasm.module, container image, env).
func TestFailSpecRollAfterActivationKeepsTheNewManifest(t *testing.T) {
	st := NewStore()
	apply := applier(t, st)
	spec := func(module, greeting string) *statev1.ComponentSpec {
		return &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Wasm: &statev1.WasmSpec{Module: module}, Env: map[string]string{"GREETING": greeting}}
	}
	apply(cmdCreateComponent(&statev1.Component{Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING, Spec: spec("v1.wasm", "hi"), ManifestSpec: spec("v1.wasm", "hi")}))
	deploy := func(id string, s *statev1.ComponentSpec) {
		apply(cmdCreateDeployment(&statev1.Deployment{Id: id, ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING}))
		apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
			Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: "sha256:" + id, Spec: s, Activate: true}}})
	}
	deploy("d1", spec("v1.wasm", "hi"))
	apply(cmdUpdateSpec("hello", spec("v1.wasm", "broken"))) // v9 component update --env: a roll
	c, _ := st.ComponentByID("c1")
	rolled := c.SpecIndex
	deploy("d2", spec("v2.wasm", "hi")) // a push lands while the roll is judged
	apply(&statev1.Command{Op: &statev1.Command_FailSpecRoll{FailSpecRoll: &statev1.FailSpecRoll{ComponentId: "c1", SpecIndex: rolled, Error: "configuration change undone"}}})
	c, _ = st.ComponentByID("c1")
	if c.ActiveDeploymentId != "d2" || c.GetSpec().GetWasm().GetModule() != "v2.wasm" {
		t.Fatalf("active %s runs module %q (manifest %q): the undone roll put back d1's manifest over d2's",
			c.ActiveDeploymentId, c.GetSpec().GetWasm().GetModule(), c.GetManifestSpec().GetWasm().GetModule())
	}
}
