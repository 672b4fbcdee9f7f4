package fsm

import (
	"bytes"
	"errors"
	"testing"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func cmdCreateLinked(c *statev1.Component, l *statev1.GithubLink, d *statev1.Deployment) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_CreateLinkedComponent{CreateLinkedComponent: &statev1.CreateLinkedComponent{
		Component: c, Link: l, Deployment: d,
	}}}
}

func linkedParts() (*statev1.Component, *statev1.GithubLink, *statev1.Deployment) {
	c := &statev1.Component{
		Id: "c-site", Name: "site", Runtime: rtWasm, Spec: wasmSpec(), Replicas: 1,
		Source: &statev1.Source{GithubRepo: "acme/site", Branch: "main"},
	}
	l := &statev1.GithubLink{ComponentId: "c-site", Repo: "acme/site", Branch: "main", HookId: 9, Secret: []byte("s")}
	d := &statev1.Deployment{Id: "d-site", ComponentId: "c-site", CommitSha: "abc", Branch: "main"}
	return c, l, d
}

// TestApplyCreateLinkedComponent: a linked create writes the component, its link and its
// first deployment in one entry, or, refused for any part, nothing at all.
func TestApplyCreateLinkedComponent(t *testing.T) {
	st := fixture(t)
	for _, tc := range []struct {
		name string
		edit func(c *statev1.Component, l *statev1.GithubLink, d *statev1.Deployment)
		drop string
		want error
	}{
		{name: "name taken", edit: func(c *statev1.Component, _ *statev1.GithubLink, _ *statev1.Deployment) { c.Name = "web" }, want: ErrAlreadyExists},
		{name: "bad spec", edit: func(c *statev1.Component, _ *statev1.GithubLink, _ *statev1.Deployment) { c.Spec.Env["v9_x"] = "y" }, want: ErrInvalid},
		{name: "bad repo", edit: func(c *statev1.Component, l *statev1.GithubLink, _ *statev1.Deployment) {
			c.Source.GithubRepo, l.Repo = "acme/si te", "acme/si te"
		}, want: ErrInvalid},
		{name: "link of another component", edit: func(_ *statev1.Component, l *statev1.GithubLink, _ *statev1.Deployment) { l.ComponentId = "c-web" }, want: ErrInvalid},
		{name: "deployment of another component", edit: func(_ *statev1.Component, _ *statev1.GithubLink, d *statev1.Deployment) { d.ComponentId = "c-web" }, want: ErrInvalid},
		{name: "link of another repo", edit: func(_ *statev1.Component, l *statev1.GithubLink, _ *statev1.Deployment) { l.Repo = "acme/other" }, want: ErrInvalid},
		{name: "deployment id taken", edit: func(_ *statev1.Component, _ *statev1.GithubLink, d *statev1.Deployment) {
			d.Id = fixtureDeploymentID(t, st)
		}, want: ErrAlreadyExists},
		{name: "deployment failed", edit: func(_ *statev1.Component, _ *statev1.GithubLink, d *statev1.Deployment) {
			d.Status = statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED
		}, want: ErrInvalid},
		{name: "no link", drop: "link", want: ErrInvalid},
		{name: "no deployment", drop: "deployment", want: ErrInvalid},
	} {
		c, l, d := linkedParts()
		if tc.edit != nil {
			tc.edit(c, l, d)
		}
		switch tc.drop {
		case "link":
			l = nil
		case "deployment":
			d = nil
		}
		before := stateBytes(t, st)
		err := st.Apply(st.Index()+1, cmdCreateLinked(c, l, d))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if !bytes.Equal(before, stateBytes(t, st)) {
			t.Fatalf("%s: a refused linked create changed the state", tc.name)
		}
	}

	c, l, d := linkedParts()
	idx := st.Index() + 1
	cmd := cmdCreateLinked(c, l, d)
	cmd.Time = at(idx)
	res := st.ApplyResult(idx, cmd)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Component.GetName() != "site" || res.Component.CreateIndex != idx {
		t.Fatalf("result component %v", res.Component)
	}
	gotC, err := st.Component("site")
	if err != nil || gotC.Desired != statev1.DesiredState_DESIRED_STATE_RUNNING || gotC.CreateIndex != idx {
		t.Fatalf("component %v %v", gotC, err)
	}
	gotL, err := st.GithubLink("c-site")
	if err != nil || gotL.HookId != 9 || string(gotL.Secret) != "s" {
		t.Fatalf("link %v %v", gotL, err)
	}
	gotD, err := st.Deployment("d-site")
	if err != nil || gotD.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING || gotD.CreateIndex != idx || !gotD.CreateTime.AsTime().Equal(at(idx).AsTime()) {
		t.Fatalf("deployment %v %v", gotD, err)
	}
	// The same command again: the name is taken, and nothing changes.
	before := stateBytes(t, st)
	if err := st.Apply(idx+1, cmdCreateLinked(linkedParts())); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("again: %v", err)
	}
	if !bytes.Equal(before, stateBytes(t, st)) {
		t.Fatal("a repeated linked create changed the state")
	}
}

func fixtureDeploymentID(t *testing.T, st *Store) string {
	t.Helper()
	for _, d := range st.State().Deployments {
		return d.Id
	}
	t.Fatal("the fixture has no deployment")
	return ""
}
