package fsm

import (
	"strings"
	"testing"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func TestApplyPushDeployments(t *testing.T) {
	building := statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING
	push := func(id, delivery string) *statev1.Command {
		return cmdCreateDeployment(&statev1.Deployment{Id: id, ComponentId: "c-web", CommitSha: "eee", Branch: "main", DeliveryId: delivery})
	}
	runApplyCases(t, []applyCase{
		{
			name: "a push records its delivery",
			cmd:  push("d-web-4", "guid-1"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if d := getDeployment(t, st, "d-web-4"); d.DeliveryId != "guid-1" || d.Branch != "main" {
					t.Errorf("deployment = %v", d)
				}
			},
		},
		{name: "a redelivery records nothing", pre: []*statev1.Command{push("d-web-4", "guid-1")}, cmd: push("d-web-5", "guid-1"), want: ErrAlreadyExists},
		{name: "another delivery of the same commit is a new deployment", pre: []*statev1.Command{push("d-web-4", "guid-1")}, cmd: push("d-web-5", "guid-2")},
		{
			name: "the same delivery id for another component is not a duplicate",
			pre:  []*statev1.Command{push("d-web-4", "guid-1")},
			cmd:  cmdCreateDeployment(&statev1.Deployment{Id: "d-api-2", ComponentId: "c-api", DeliveryId: "guid-1"}),
		},
		{
			name: "ready with spec, origin and build log",
			pre:  []*statev1.Command{cmdSetDeploymentStatus("d-web-2", building, "", "")},
			cmd: &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
				Id: "d-web-2", Status: stReady, ArtifactDigest: "sha256:ab", Spec: wasmSpec(), ArtifactOrigin: "n2",
				BuildLog: strings.Repeat("x", MaxBuildLog+10) + "END",
			}}},
			check: func(t *testing.T, st *Store, _ []byte) {
				d := getDeployment(t, st, "d-web-2")
				if d.Spec.GetScaleMax() != 3 || d.ArtifactOrigin != "n2" || !strings.HasSuffix(d.BuildLog, "END") || len(d.BuildLog) > MaxBuildLog+8 {
					t.Errorf("deployment = spec %v origin %q log %d bytes", d.Spec, d.ArtifactOrigin, len(d.BuildLog))
				}
			},
		},
		{
			name: "ready and active in one step, with the spec",
			pre:  []*statev1.Command{cmdSetDeploymentStatus("d-web-2", building, "", "")},
			cmd: &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
				Id: "d-web-2", Status: stReady, ArtifactDigest: "sha256:ab", Activate: true,
				Spec: &statev1.ComponentSpec{ScaleMin: 2, ScaleMax: 4},
			}}},
			check: func(t *testing.T, st *Store, _ []byte) {
				c, _ := st.Component("web")
				if c.ActiveDeploymentId != "d-web-2" || c.Spec.ScaleMax != 4 || c.Replicas != 2 || c.ModifyIndex != applyIndex {
					t.Errorf("component = %v", c)
				}
			},
		},
		{
			name: "an older deployment becomes ready but not active over a newer active one",
			pre: []*statev1.Command{
				cmdCreateDeployment(&statev1.Deployment{Id: "d-web-9", ComponentId: "c-web", Status: stReady, ArtifactDigest: "sha256:09"}),
				cmdActivate("c-web", "d-web-9"),
			},
			cmd: &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
				Id: "d-web-2", Status: stReady, ArtifactDigest: "sha256:ab", Activate: true, Spec: &statev1.ComponentSpec{ScaleMax: 9},
			}}},
			check: func(t *testing.T, st *Store, _ []byte) {
				c, _ := st.Component("web")
				if d := getDeployment(t, st, "d-web-2"); d.Status != stReady || c.ActiveDeploymentId != "d-web-9" || c.Spec.ScaleMax == 9 {
					t.Errorf("deployment %v, component %v", d, c)
				}
			},
		},
		{
			name: "activate needs ready",
			cmd: &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
				Id: "d-web-2", Status: building, Activate: true,
			}}},
			want: ErrInvalid,
		},
		{
			name: "a spec the runtime cannot take is refused",
			cmd: &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
				Id: "d-web-2", Status: stFailed, Spec: &statev1.ComponentSpec{ScaleMax: 0},
			}}},
			want: ErrInvalid,
		},
		{
			name: "links are read with their secrets for the verifier",
			cmd:  cmdPutLink(&statev1.GithubLink{ComponentId: "c-web", Repo: "acme/web", Branch: "main", PollSeconds: 30}),
			check: func(t *testing.T, st *Store, _ []byte) {
				ls := st.GithubLinks()
				if len(ls) != 2 || ls[0].ComponentId != "c-api" || string(ls[0].Secret) != "other" || ls[1].PollSeconds != 30 {
					t.Errorf("links = %v", ls)
				}
			},
		},
	})
}
