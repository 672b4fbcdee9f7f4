package fsm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/spec"
)

// applyIndex is the index at which each case's command is applied, after the fixture and
// the case's own preparation.
const applyIndex = 100

type applyCase struct {
	name string
	// pre runs after the fixture, at indexes 50, 51, ...; each must succeed.
	pre []*statev1.Command
	cmd *statev1.Command
	// want is the sentinel the command fails with, or nil for success.
	want error
	// check inspects the store after a successful command; before is stateBytes taken
	// just before it.
	check func(t *testing.T, st *Store, before []byte)
}

func runApplyCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := fixture(t)
			for i, c := range tc.pre {
				idx := uint64(50 + i)
				c.Time = at(idx)
				if err := st.Apply(idx, c); err != nil {
					t.Fatalf("pre[%d] (%v): %v", i, c, err)
				}
			}
			if tc.cmd != nil {
				tc.cmd.Time = at(applyIndex)
			}
			before := stateBytes(t, st)
			err := st.Apply(applyIndex, tc.cmd)
			if got := st.Index(); got != applyIndex {
				t.Errorf("Index() = %d after apply, want %d", got, applyIndex)
			}
			if e := checkInvariants(st); e != nil {
				t.Errorf("invariant broken: %v", e)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				if tc.check != nil {
					tc.check(t, st, before)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Apply error = %v, want %v", err, tc.want)
			}
			if got, want := errClass(err), tc.want.Error(); got != want {
				t.Errorf("error %v classified as %q, want %q", err, got, want)
			}
			if after := stateBytes(t, st); !bytes.Equal(before, after) {
				t.Errorf("failed command changed the state:\n%s", diffStates(before, after))
			}
		})
	}
}

// ---- lookups for checks ----

func getComponent(t *testing.T, st *Store, name string) *statev1.Component {
	t.Helper()
	c, err := st.Component(name)
	if err != nil {
		t.Fatalf("Component(%q): %v", name, err)
	}
	return c
}

func getDeployment(t *testing.T, st *Store, id string) *statev1.Deployment {
	t.Helper()
	for _, d := range st.State().Deployments {
		if d.Id == id {
			return d
		}
	}
	t.Fatalf("deployment %q not found", id)
	return nil
}

func getPlacement(t *testing.T, st *Store, id string) *statev1.Placement {
	t.Helper()
	for _, p := range st.Placements("") {
		if p.Id == id {
			return p
		}
	}
	t.Fatalf("placement %q not found", id)
	return nil
}

func getNode(t *testing.T, st *Store, id string) *statev1.Node {
	t.Helper()
	n, err := st.Node(id)
	if err != nil {
		t.Fatalf("Node(%q): %v", id, err)
	}
	return n
}

func wantIndexes(t *testing.T, what string, create, modify, wantCreate, wantModify uint64) {
	t.Helper()
	if create != wantCreate || modify != wantModify {
		t.Errorf("%s: create/modify index = %d/%d, want %d/%d", what, create, modify, wantCreate, wantModify)
	}
}

func wantTime(t *testing.T, what string, got interface{ GetSeconds() int64 }, sec uint64) {
	t.Helper()
	if want := at(sec); got == nil || got.GetSeconds() != want.Seconds {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// newComponent is a valid component "new" (wasm) changed by mod.
func newComponent(mod func(c *statev1.Component)) *statev1.Component {
	c := &statev1.Component{Id: "c-new", Name: "new", Runtime: rtWasm, Spec: wasmSpec(), Replicas: 1}
	if mod != nil {
		mod(c)
	}
	return c
}

// withSpec is a valid wasm spec changed by mod.
func withSpec(mod func(s *statev1.ComponentSpec)) *statev1.ComponentSpec {
	s := wasmSpec()
	mod(s)
	return s
}

// ---- components ----

func TestApplyComponents(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "create stamps indexes and times",
			cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
				// Whatever the writer puts here is overwritten.
				c.CreateIndex, c.ModifyIndex, c.CreateTime, c.UpdateTime = 5, 6, at(1), at(2)
			})),
			check: func(t *testing.T, st *Store, _ []byte) {
				c := getComponent(t, st, "new")
				wantIndexes(t, "component", c.CreateIndex, c.ModifyIndex, applyIndex, applyIndex)
				wantTime(t, "create time", c.CreateTime, applyIndex)
				wantTime(t, "update time", c.UpdateTime, applyIndex)
				if c.Desired != statev1.DesiredState_DESIRED_STATE_RUNNING {
					t.Errorf("desired = %v, want running by default", c.Desired)
				}
				if c.Id != "c-new" || c.Replicas != 1 || c.Spec.Env["GREETING"] != "hi" {
					t.Errorf("component = %v", c)
				}
			},
		},
		{
			name: "create paused container with a 63-character name",
			cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
				c.Name = strings.Repeat("a", 62) + "9"
				c.Runtime, c.Spec, c.Desired = rtContainer, containerSpec(), statev1.DesiredState_DESIRED_STATE_PAUSED
			})),
			check: func(t *testing.T, st *Store, _ []byte) {
				c := getComponent(t, st, strings.Repeat("a", 62)+"9")
				if c.Desired != statev1.DesiredState_DESIRED_STATE_PAUSED || c.Runtime != rtContainer {
					t.Errorf("component = %v", c)
				}
			},
		},
		{
			name: "create one-character name with exclusive spec",
			cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
				c.Name = "x"
				c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.ScaleMax, s.Exclusive = 1, true })
			})),
			check: func(t *testing.T, st *Store, _ []byte) { getComponent(t, st, "x") },
		},
		{name: "create nil component", cmd: cmdCreateComponent(nil), want: ErrInvalid},
		{name: "create without id", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Id = "" })), want: ErrInvalid},
		{name: "create duplicate name", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Name = "web" })), want: ErrAlreadyExists},
		{name: "create duplicate id", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Id = "c-web" })), want: ErrAlreadyExists},
		{name: "create name upper case", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Name = "Web2" })), want: ErrInvalid},
		{name: "create name leading dash", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Name = "-web" })), want: ErrInvalid},
		{name: "create name trailing dash", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Name = "web-" })), want: ErrInvalid},
		{name: "create name 64 characters", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Name = strings.Repeat("a", 64) })), want: ErrInvalid},
		{name: "create name empty", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Name = "" })), want: ErrInvalid},
		{name: "create name with dot", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Name = "a.b" })), want: ErrInvalid},
		{name: "create name with underscore", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Name = "a_b" })), want: ErrInvalid},
		{name: "create runtime unspecified", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Runtime = 0 })), want: ErrInvalid},
		{name: "create runtime unknown", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Runtime = 7 })), want: ErrInvalid},
		{name: "create source not owner/repo", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Source = &statev1.Source{GithubRepo: "acme", Branch: "main"}
		})), want: ErrInvalid},
		{name: "create source without branch", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Source = &statev1.Source{GithubRepo: "acme/web"}
		})), want: ErrInvalid},
		{name: "create spec missing", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Spec = nil })), want: ErrInvalid},
		{name: "create spec min above max", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.ScaleMin, s.ScaleMax = 3, 2 })
		})), want: ErrInvalid},
		{name: "create spec max 0", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Replicas = 0
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.ScaleMin, s.ScaleMax = 0, 0 })
		})), want: ErrInvalid},
		{name: "create spec max above limit", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.ScaleMax = spec.MaxScale + 1 })
		})), want: ErrInvalid},
		{name: "create spec exclusive with max 2", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.ScaleMax, s.Exclusive = 2, true })
		})), want: ErrInvalid},
		{name: "create container with min 0 (scale to zero)", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Runtime, c.Spec = rtContainer, containerSpec()
			c.Spec.ScaleMin = 0
		}))},
		{name: "create env key with dash", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.Env["BAD-KEY"] = "x" })
		})), want: ErrInvalid},
		{name: "create env key with leading digit", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.Env["1X"] = "x" })
		})), want: ErrInvalid},
		{name: "create env key empty", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.Env[""] = "x" })
		})), want: ErrInvalid},
		{name: "create env key v9_ prefix in lower case", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.Env["v9_node"] = "x" })
		})), want: ErrInvalid},
		{name: "create spec memory below bound", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.MemoryBytes = spec.MinMemory - 1 })
		})), want: ErrInvalid},
		{name: "create spec timeout above bound", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.TimeoutMs = 15*60*1000 + 1 })
		})), want: ErrInvalid},
		{name: "update spec memory above bound", cmd: &statev1.Command{Op: &statev1.Command_UpdateComponentSpec{UpdateComponentSpec: &statev1.UpdateComponentSpec{
			Name: "web", Spec: withSpec(func(s *statev1.ComponentSpec) { s.MemoryBytes = spec.MaxMemory + 1 }),
		}}}, want: ErrInvalid},
		{name: "create env key V9_ prefix", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.Env["V9_NODE"] = "x" })
		})), want: ErrInvalid},
		{name: "create wasm build unsupported", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Spec = withSpec(func(s *statev1.ComponentSpec) { s.Wasm = &statev1.WasmSpec{Build: "rust"} })
		})), want: ErrInvalid},
		{name: "create replicas above max", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Replicas = 4 })), want: ErrInvalid},
		{name: "create replicas below min", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) {
			c.Runtime, c.Spec, c.Replicas = rtContainer, containerSpec(), 0
		})), want: ErrInvalid},
		{name: "create with active deployment", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.ActiveDeploymentId = "d-web-1" })), want: ErrInvalid},
		{name: "create desired unknown", cmd: cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Desired = 9 })), want: ErrInvalid},

		{
			name: "update spec clamps replicas up",
			cmd:  cmdUpdateSpec("web", withSpec(func(s *statev1.ComponentSpec) { s.ScaleMin, s.ScaleMax, s.Env = 2, 4, map[string]string{"NEW": "1"} })),
			check: func(t *testing.T, st *Store, _ []byte) {
				c := getComponent(t, st, "web")
				wantIndexes(t, "component", c.CreateIndex, c.ModifyIndex, 1, applyIndex)
				wantTime(t, "create time", c.CreateTime, 1)
				wantTime(t, "update time", c.UpdateTime, applyIndex)
				if c.Replicas != 2 {
					t.Errorf("replicas = %d, want 2 (raised to the new min)", c.Replicas)
				}
				if len(c.Spec.Env) != 1 || c.Spec.Env["NEW"] != "1" {
					t.Errorf("env = %v, want the new env only", c.Spec.Env)
				}
			},
		},
		{
			name: "update spec clamps replicas down",
			pre:  []*statev1.Command{cmdScale("web", 3)},
			cmd:  cmdUpdateSpec("web", withSpec(func(s *statev1.ComponentSpec) { s.ScaleMax = 2 })),
			check: func(t *testing.T, st *Store, _ []byte) {
				if c := getComponent(t, st, "web"); c.Replicas != 2 {
					t.Errorf("replicas = %d, want 2 (lowered to the new max)", c.Replicas)
				}
			},
		},
		{name: "update spec unknown component", cmd: cmdUpdateSpec("nope", wasmSpec()), want: ErrNotFound},
		{name: "update spec missing", cmd: cmdUpdateSpec("web", nil), want: ErrInvalid},
		{name: "update spec min above max", cmd: cmdUpdateSpec("web", withSpec(func(s *statev1.ComponentSpec) { s.ScaleMin, s.ScaleMax = 5, 4 })), want: ErrInvalid},
		{name: "update spec exclusive with max 2", cmd: cmdUpdateSpec("web", withSpec(func(s *statev1.ComponentSpec) { s.ScaleMax, s.Exclusive = 2, true })), want: ErrInvalid},
		{name: "update spec V9_ env key", cmd: cmdUpdateSpec("web", withSpec(func(s *statev1.ComponentSpec) { s.Env["V9_X"] = "" })), want: ErrInvalid},
		{name: "update container spec to min 0 (scale to zero)", cmd: cmdUpdateSpec("api", &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 2})},

		{
			name: "set desired paused",
			cmd:  cmdSetDesired("web", statev1.DesiredState_DESIRED_STATE_PAUSED),
			check: func(t *testing.T, st *Store, _ []byte) {
				c := getComponent(t, st, "web")
				if c.Desired != statev1.DesiredState_DESIRED_STATE_PAUSED {
					t.Errorf("desired = %v", c.Desired)
				}
				wantIndexes(t, "component", c.CreateIndex, c.ModifyIndex, 1, applyIndex)
				wantTime(t, "update time", c.UpdateTime, applyIndex)
			},
		},
		{name: "set desired unknown component", cmd: cmdSetDesired("nope", statev1.DesiredState_DESIRED_STATE_PAUSED), want: ErrNotFound},
		{name: "set desired unspecified", cmd: cmdSetDesired("web", statev1.DesiredState_DESIRED_STATE_UNSPECIFIED), want: ErrInvalid},
		{name: "set desired out of range", cmd: cmdSetDesired("web", 3), want: ErrInvalid},

		{
			name: "scale to max",
			cmd:  cmdScale("web", 3),
			check: func(t *testing.T, st *Store, _ []byte) {
				c := getComponent(t, st, "web")
				if c.Replicas != 3 {
					t.Errorf("replicas = %d", c.Replicas)
				}
				wantIndexes(t, "component", c.CreateIndex, c.ModifyIndex, 1, applyIndex)
				wantTime(t, "update time", c.UpdateTime, applyIndex)
			},
		},
		{
			name: "scale wasm to zero",
			cmd:  cmdScale("web", 0),
			check: func(t *testing.T, st *Store, _ []byte) {
				if c := getComponent(t, st, "web"); c.Replicas != 0 {
					t.Errorf("replicas = %d", c.Replicas)
				}
			},
		},
		{name: "scale unknown component", cmd: cmdScale("nope", 1), want: ErrNotFound},
		{name: "scale above max", cmd: cmdScale("web", 4), want: ErrInvalid},
		{name: "scale far above max", cmd: cmdScale("web", 1<<32-1), want: ErrInvalid},
		{name: "scale below min", cmd: cmdScale("api", 0), want: ErrInvalid},
		{name: "scale conditional on a stale read", cmd: func() *statev1.Command {
			cmd := cmdScale("web", 2)
			cmd.GetScaleComponent().IfModifyIndex = 1 << 40 // not the component's modify_index
			return cmd
		}(), want: ErrConflict},

		{
			name: "delete cascades to deployments, placements and link",
			cmd:  cmdDeleteComponent("web"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if _, err := st.Component("web"); !errors.Is(err, ErrNotFound) {
					t.Errorf("Component(web) after delete: %v, want ErrNotFound", err)
				}
				if ds := st.Deployments("c-web"); len(ds) != 0 {
					t.Errorf("deployments of deleted component remain: %v", ds)
				}
				for _, p := range st.Placements("") {
					if p.ComponentId == "c-web" {
						t.Errorf("placement of deleted component remains: %v", p)
					}
				}
				if _, err := st.GithubLink("c-web"); !errors.Is(err, ErrNotFound) {
					t.Errorf("GithubLink(c-web) after delete: %v, want ErrNotFound", err)
				}
				// The other component keeps everything.
				s := st.State()
				if len(s.Components) != 1 || len(s.Deployments) != 1 || len(s.Placements) != 1 || len(s.GithubLinks) != 1 {
					t.Errorf("state after delete: %v", s)
				}
				getComponent(t, st, "api")
				if _, err := st.GithubLink("c-api"); err != nil {
					t.Errorf("GithubLink(c-api): %v", err)
				}
				// The name and the id are free again.
				if err := st.Apply(applyIndex+1, cmdCreateComponent(webComponent())); err != nil {
					t.Errorf("re-create web: %v", err)
				}
			},
		},
		{name: "delete unknown component", cmd: cmdDeleteComponent("nope"), want: ErrNotFound},
		{name: "delete by id is not by name", cmd: cmdDeleteComponent("c-web"), want: ErrNotFound},
	})
}

// ---- nodes ----

func TestApplyNodes(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "register new node defaults to ready",
			cmd:  cmdRegisterNode(testNode("n3")),
			check: func(t *testing.T, st *Store, _ []byte) {
				n := getNode(t, st, "n3")
				if n.Status != statev1.NodeStatus_NODE_STATUS_READY {
					t.Errorf("status = %v, want ready", n.Status)
				}
				wantIndexes(t, "node", n.CreateIndex, n.ModifyIndex, applyIndex, applyIndex)
				wantTime(t, "register time", n.RegisterTime, applyIndex)
			},
		},
		{
			name: "re-register keeps create index",
			cmd: cmdRegisterNode(func() *statev1.Node {
				n := testNode("n1")
				n.Status, n.ApiAddr = statev1.NodeStatus_NODE_STATUS_DRAINING, "n1:9999"
				return n
			}()),
			check: func(t *testing.T, st *Store, _ []byte) {
				n := getNode(t, st, "n1")
				wantIndexes(t, "node", n.CreateIndex, n.ModifyIndex, 3, applyIndex)
				wantTime(t, "register time", n.RegisterTime, applyIndex)
				if n.Status != statev1.NodeStatus_NODE_STATUS_DRAINING || n.ApiAddr != "n1:9999" {
					t.Errorf("node = %v", n)
				}
			},
		},
		{name: "register nil node", cmd: cmdRegisterNode(nil), want: ErrInvalid},
		{name: "register without id", cmd: cmdRegisterNode(testNode("")), want: ErrInvalid},
		{name: "register without raft address", cmd: cmdRegisterNode(func() *statev1.Node { n := testNode("n3"); n.RaftAddr = ""; return n }()), want: ErrInvalid},
		{name: "register without api address", cmd: cmdRegisterNode(func() *statev1.Node { n := testNode("n3"); n.ApiAddr = ""; return n }()), want: ErrInvalid},
		{name: "register unknown runtime", cmd: cmdRegisterNode(func() *statev1.Node { n := testNode("n3"); n.Runtimes = []statev1.Runtime{rtWasm, 0}; return n }()), want: ErrInvalid},
		{name: "register unknown status", cmd: cmdRegisterNode(func() *statev1.Node { n := testNode("n1"); n.Status = 9; return n }()), want: ErrInvalid},

		{
			name: "set node status",
			cmd:  cmdSetNodeStatus("n2", statev1.NodeStatus_NODE_STATUS_DOWN),
			check: func(t *testing.T, st *Store, _ []byte) {
				n := getNode(t, st, "n2")
				if n.Status != statev1.NodeStatus_NODE_STATUS_DOWN {
					t.Errorf("status = %v", n.Status)
				}
				wantIndexes(t, "node", n.CreateIndex, n.ModifyIndex, 4, applyIndex)
			},
		},
		{
			name: "down marks the node's placements stop and lost",
			cmd:  cmdSetNodeStatus("n2", statev1.NodeStatus_NODE_STATUS_DOWN),
			check: func(t *testing.T, st *Store, _ []byte) {
				for _, p := range st.Placements("") {
					lost := p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST && p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_STOP
					if lost != (p.NodeId == "n2") {
						t.Errorf("placement %s on %s: %s/%s", p.Id, p.NodeId, p.Desired, p.Observed)
					}
				}
			},
		},
		{
			name: "a drain survives the node going down",
			pre:  []*statev1.Command{cmdSetNodeStatus("n2", statev1.NodeStatus_NODE_STATUS_DRAINING)},
			cmd:  cmdSetNodeStatus("n2", statev1.NodeStatus_NODE_STATUS_DOWN),
			check: func(t *testing.T, st *Store, _ []byte) {
				if n := getNode(t, st, "n2"); !n.Drain {
					t.Errorf("drain forgotten: %v", n)
				}
			},
		},
		{
			name: "ready ends a drain",
			pre:  []*statev1.Command{cmdSetNodeStatus("n2", statev1.NodeStatus_NODE_STATUS_DRAINING)},
			cmd:  cmdSetNodeStatus("n2", statev1.NodeStatus_NODE_STATUS_READY),
			check: func(t *testing.T, st *Store, _ []byte) {
				if n := getNode(t, st, "n2"); n.Drain {
					t.Errorf("drain kept: %v", n)
				}
			},
		},
		{name: "set status of unknown node", cmd: cmdSetNodeStatus("n9", statev1.NodeStatus_NODE_STATUS_DOWN), want: ErrNotFound},
		{name: "set node status unspecified", cmd: cmdSetNodeStatus("n1", statev1.NodeStatus_NODE_STATUS_UNSPECIFIED), want: ErrInvalid},
		{name: "set node status out of range", cmd: cmdSetNodeStatus("n1", 4), want: ErrInvalid},

		{
			name: "remove node stops its placements and marks them lost in the same entry",
			cmd:  cmdRemoveNode("n1"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if _, err := st.Node("n1"); !errors.Is(err, ErrNotFound) {
					t.Errorf("Node(n1) after remove: %v", err)
				}
				for _, id := range []string{"p-web-1", "p-api-1"} {
					p := getPlacement(t, st, id)
					if p.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST || p.Reason != "node removed" {
						t.Errorf("placement %s = %v, want lost", id, p)
					}
					if p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_STOP || p.Epoch != 2 {
						t.Errorf("placement %s = %v, want desired stop at epoch 2", id, p)
					}
					wantIndexes(t, id, p.CreateIndex, p.ModifyIndex, 11, applyIndex)
				}
				p := getPlacement(t, st, "p-web-2")
				if p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST || p.ModifyIndex != 11 {
					t.Errorf("placement on another node changed: %v", p)
				}
			},
		},
		{name: "remove unknown node", cmd: cmdRemoveNode("n9"), want: ErrNotFound},
	})
}

// ---- deployments ----

func TestApplyDeployments(t *testing.T) {
	building := statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING
	runApplyCases(t, []applyCase{
		{
			name: "create defaults to pending",
			cmd:  cmdCreateDeployment(&statev1.Deployment{Id: "d-web-4", ComponentId: "c-web", CommitSha: "ddd", CreateIndex: 3}),
			check: func(t *testing.T, st *Store, _ []byte) {
				d := getDeployment(t, st, "d-web-4")
				if d.Status != stPending || d.CommitSha != "ddd" {
					t.Errorf("deployment = %v", d)
				}
				wantIndexes(t, "deployment", d.CreateIndex, d.ModifyIndex, applyIndex, applyIndex)
				wantTime(t, "create time", d.CreateTime, applyIndex)
				wantTime(t, "update time", d.UpdateTime, applyIndex)
				ds := st.Deployments("c-web")
				if last := ds[len(ds)-1]; last.Id != "d-web-4" {
					t.Errorf("Deployments not oldest first: last is %q", last.Id)
				}
			},
		},
		{
			name: "create ready with digest",
			cmd:  cmdCreateDeployment(&statev1.Deployment{Id: "d-web-4", ComponentId: "c-web", Status: stReady, ArtifactDigest: "sha256:04"}),
			check: func(t *testing.T, st *Store, _ []byte) {
				if d := getDeployment(t, st, "d-web-4"); d.Status != stReady {
					t.Errorf("deployment = %v", d)
				}
			},
		},
		{name: "create nil", cmd: cmdCreateDeployment(nil), want: ErrInvalid},
		{name: "create without id", cmd: cmdCreateDeployment(&statev1.Deployment{ComponentId: "c-web"}), want: ErrInvalid},
		{name: "create duplicate id", cmd: cmdCreateDeployment(&statev1.Deployment{Id: "d-web-1", ComponentId: "c-web"}), want: ErrAlreadyExists},
		{name: "create for unknown component", cmd: cmdCreateDeployment(&statev1.Deployment{Id: "d-x", ComponentId: "c-nope"}), want: ErrNotFound},
		{name: "create for component name instead of id", cmd: cmdCreateDeployment(&statev1.Deployment{Id: "d-x", ComponentId: "web"}), want: ErrNotFound},
		{name: "create building", cmd: cmdCreateDeployment(&statev1.Deployment{Id: "d-x", ComponentId: "c-web", Status: building}), want: ErrInvalid},
		{name: "create failed", cmd: cmdCreateDeployment(&statev1.Deployment{Id: "d-x", ComponentId: "c-web", Status: stFailed}), want: ErrInvalid},
		{name: "create ready without digest", cmd: cmdCreateDeployment(&statev1.Deployment{Id: "d-x", ComponentId: "c-web", Status: stReady}), want: ErrInvalid},

		{
			name: "pending to building",
			cmd:  cmdSetDeploymentStatus("d-web-2", building, "", ""),
			check: func(t *testing.T, st *Store, _ []byte) {
				d := getDeployment(t, st, "d-web-2")
				if d.Status != building {
					t.Errorf("status = %v", d.Status)
				}
				wantIndexes(t, "deployment", d.CreateIndex, d.ModifyIndex, 6, applyIndex)
				wantTime(t, "create time", d.CreateTime, 6)
				wantTime(t, "update time", d.UpdateTime, applyIndex)
			},
		},
		{
			name: "building to ready with digest",
			pre:  []*statev1.Command{cmdSetDeploymentStatus("d-web-2", building, "", "")},
			cmd:  cmdSetDeploymentStatus("d-web-2", stReady, "sha256:ff", ""),
			check: func(t *testing.T, st *Store, _ []byte) {
				if d := getDeployment(t, st, "d-web-2"); d.Status != stReady || d.ArtifactDigest != "sha256:ff" {
					t.Errorf("deployment = %v", d)
				}
			},
		},
		{
			name: "pending to ready keeps the digest it has",
			pre:  []*statev1.Command{cmdCreateDeployment(&statev1.Deployment{Id: "d-web-4", ComponentId: "c-web", ArtifactDigest: "sha256:0a"})},
			cmd:  cmdSetDeploymentStatus("d-web-4", stReady, "", ""),
			check: func(t *testing.T, st *Store, _ []byte) {
				if d := getDeployment(t, st, "d-web-4"); d.Status != stReady || d.ArtifactDigest != "sha256:0a" {
					t.Errorf("deployment = %v", d)
				}
			},
		},
		{
			name: "pending to failed with error",
			cmd:  cmdSetDeploymentStatus("d-web-2", stFailed, "", "no v9.toml"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if d := getDeployment(t, st, "d-web-2"); d.Status != stFailed || d.Error != "no v9.toml" {
					t.Errorf("deployment = %v", d)
				}
			},
		},
		{
			name: "an unfinished upload fails its pending deployment",
			cmd:  cmdFailUnfinished("d-web-2", "client went away"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if d := getDeployment(t, st, "d-web-2"); d.Status != stFailed || d.Error != "client went away" {
					t.Errorf("deployment = %v", d)
				}
			},
		},
		{
			name: "an unfinished upload's failure leaves a ready deployment ready",
			cmd:  cmdFailUnfinished("d-web-1", "client went away"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if d := getDeployment(t, st, "d-web-1"); d.Status != stReady || d.Error != "" {
					t.Errorf("deployment = %v", d)
				}
			},
		},
		{name: "status of unknown deployment", cmd: cmdSetDeploymentStatus("d-nope", building, "", ""), want: ErrNotFound},
		{name: "ready to building refused", cmd: cmdSetDeploymentStatus("d-web-1", building, "", ""), want: ErrInvalid},
		{name: "ready to ready refused", cmd: cmdSetDeploymentStatus("d-web-1", stReady, "sha256:99", ""), want: ErrInvalid},
		{name: "failed to failed refused", cmd: cmdSetDeploymentStatus("d-web-3", stFailed, "", "again"), want: ErrInvalid},
		{name: "failed to ready refused", cmd: cmdSetDeploymentStatus("d-web-3", stReady, "sha256:99", ""), want: ErrInvalid},
		{name: "failed to building refused", cmd: cmdSetDeploymentStatus("d-web-3", building, "", ""), want: ErrInvalid},
		{name: "back to pending refused", cmd: cmdSetDeploymentStatus("d-web-2", stPending, "", ""), want: ErrInvalid},
		{name: "status unspecified refused", cmd: cmdSetDeploymentStatus("d-web-2", 0, "", ""), want: ErrInvalid},
		{name: "status out of range refused", cmd: cmdSetDeploymentStatus("d-web-2", 5, "", ""), want: ErrInvalid},
		{name: "ready without any digest refused", cmd: cmdSetDeploymentStatus("d-web-2", stReady, "", ""), want: ErrInvalid},

		{
			name: "activate a ready deployment",
			pre:  []*statev1.Command{cmdCreateDeployment(&statev1.Deployment{Id: "d-web-4", ComponentId: "c-web", Status: stReady, ArtifactDigest: "sha256:04"})},
			cmd:  cmdActivate("c-web", "d-web-4"),
			check: func(t *testing.T, st *Store, _ []byte) {
				c := getComponent(t, st, "web")
				if c.ActiveDeploymentId != "d-web-4" {
					t.Errorf("active deployment = %q", c.ActiveDeploymentId)
				}
				wantIndexes(t, "component", c.CreateIndex, c.ModifyIndex, 1, applyIndex)
				wantTime(t, "update time", c.UpdateTime, applyIndex)
			},
		},
		{
			name: "activate a built deployment",
			pre: []*statev1.Command{
				cmdSetDeploymentStatus("d-web-2", building, "", ""),
				cmdSetDeploymentStatus("d-web-2", stReady, "sha256:02", ""),
			},
			cmd: cmdActivate("c-web", "d-web-2"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if c := getComponent(t, st, "web"); c.ActiveDeploymentId != "d-web-2" {
					t.Errorf("active deployment = %q", c.ActiveDeploymentId)
				}
			},
		},
		{name: "activate for unknown component", cmd: cmdActivate("c-nope", "d-web-1"), want: ErrNotFound},
		{name: "activate unknown deployment", cmd: cmdActivate("c-web", "d-nope"), want: ErrNotFound},
		{name: "activate deployment of another component", cmd: cmdActivate("c-api", "d-web-1"), want: ErrInvalid},
		{name: "activate pending deployment", cmd: cmdActivate("c-web", "d-web-2"), want: ErrInvalid},
		{name: "activate building deployment", pre: []*statev1.Command{cmdSetDeploymentStatus("d-web-2", building, "", "")}, cmd: cmdActivate("c-web", "d-web-2"), want: ErrInvalid},
		{name: "activate failed deployment", cmd: cmdActivate("c-web", "d-web-3"), want: ErrInvalid},
	})
}

// ---- placements ----

func TestApplyPlacements(t *testing.T) {
	stop := statev1.PlacementDesired_PLACEMENT_DESIRED_STOP
	running := statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING
	runApplyCases(t, []applyCase{
		{
			name: "put new and updated placements",
			pre:  []*statev1.Command{cmdCreateDeployment(&statev1.Deployment{Id: "d-web-4", ComponentId: "c-web", Status: stReady, ArtifactDigest: "sha256:04"})},
			cmd: cmdPutPlacements(
				mkPlacement("p-web-3", "c-web", "d-web-4", "n2", 2),
				&statev1.Placement{Id: "p-web-1", ComponentId: "c-web", DeploymentId: "d-web-1", NodeId: "n1", Desired: stop, Epoch: 2},
				mkPlacement("p-api-1", "c-api", "d-api-1", "n1", 1), // same epoch is allowed
			),
			check: func(t *testing.T, st *Store, _ []byte) {
				p := getPlacement(t, st, "p-web-3")
				wantIndexes(t, "new placement", p.CreateIndex, p.ModifyIndex, applyIndex, applyIndex)
				p = getPlacement(t, st, "p-web-1")
				wantIndexes(t, "updated placement", p.CreateIndex, p.ModifyIndex, 11, applyIndex)
				if p.Desired != stop || p.Epoch != 2 {
					t.Errorf("updated placement = %v", p)
				}
				if ps := st.Placements("n2"); len(ps) != 2 || ps[0].Id != "p-web-2" || ps[1].Id != "p-web-3" {
					t.Errorf("Placements(n2) = %v", ps)
				}
			},
		},
		{
			name: "put may switch deployment within the component",
			pre:  []*statev1.Command{cmdCreateDeployment(&statev1.Deployment{Id: "d-web-4", ComponentId: "c-web", Status: stReady, ArtifactDigest: "sha256:04"})},
			cmd:  cmdPutPlacements(mkPlacement("p-web-1", "c-web", "d-web-4", "n1", 2)),
			check: func(t *testing.T, st *Store, _ []byte) {
				if p := getPlacement(t, st, "p-web-1"); p.DeploymentId != "d-web-4" {
					t.Errorf("placement = %v", p)
				}
			},
		},
		{
			name: "put nothing",
			cmd:  cmdPutPlacements(),
			check: func(t *testing.T, st *Store, before []byte) {
				if after := stateBytes(t, st); !bytes.Equal(before, after) {
					t.Errorf("empty put changed the state:\n%s", diffStates(before, after))
				}
			},
		},
		{name: "put without id", cmd: cmdPutPlacements(mkPlacement("", "c-web", "d-web-1", "n1", 1)), want: ErrInvalid},
		{name: "put same id twice", cmd: cmdPutPlacements(mkPlacement("p-x", "c-web", "d-web-1", "n1", 1), mkPlacement("p-x", "c-web", "d-web-1", "n1", 1)), want: ErrInvalid},
		{name: "put unknown component", cmd: cmdPutPlacements(mkPlacement("p-x", "c-nope", "d-web-1", "n1", 1)), want: ErrNotFound},
		{name: "put unknown deployment", cmd: cmdPutPlacements(mkPlacement("p-x", "c-web", "d-nope", "n1", 1)), want: ErrInvalid},
		{name: "put deployment of another component", cmd: cmdPutPlacements(mkPlacement("p-x", "c-web", "d-api-1", "n1", 1)), want: ErrInvalid},
		{name: "put unknown node", cmd: cmdPutPlacements(mkPlacement("p-x", "c-web", "d-web-1", "n9", 1)), want: ErrNotFound},
		{name: "put desired unspecified", cmd: cmdPutPlacements(&statev1.Placement{Id: "p-x", ComponentId: "c-web", DeploymentId: "d-web-1", NodeId: "n1"}), want: ErrInvalid},
		{name: "put desired out of range", cmd: cmdPutPlacements(&statev1.Placement{Id: "p-x", ComponentId: "c-web", DeploymentId: "d-web-1", NodeId: "n1", Desired: 3}), want: ErrInvalid},
		{name: "put moves to another node", cmd: cmdPutPlacements(mkPlacement("p-web-1", "c-web", "d-web-1", "n2", 2)), want: ErrInvalid},
		{name: "put moves to another component", cmd: cmdPutPlacements(mkPlacement("p-web-1", "c-api", "d-api-1", "n1", 2)), want: ErrInvalid},
		{
			name: "put epoch going backwards",
			pre:  []*statev1.Command{cmdPutPlacements(mkPlacement("p-web-1", "c-web", "d-web-1", "n1", 5))},
			cmd:  cmdPutPlacements(mkPlacement("p-web-1", "c-web", "d-web-1", "n1", 4)),
			want: ErrInvalid,
		},
		{
			name: "put is all or nothing",
			cmd: cmdPutPlacements(
				mkPlacement("p-new", "c-web", "d-web-1", "n1", 1),
				mkPlacement("p-web-2", "c-web", "d-web-1", "n2", 0), // epoch 0 < 1
			),
			want: ErrInvalid,
		},
		{
			name: "put of a placement whose node was removed",
			pre:  []*statev1.Command{cmdRemoveNode("n2")},
			cmd:  cmdPutPlacements(mkPlacement("p-web-2", "c-web", "d-web-1", "n2", 2)),
			want: ErrNotFound,
		},

		{
			name: "set observed",
			cmd:  cmdSetObserved("p-web-1", running, "up"),
			check: func(t *testing.T, st *Store, _ []byte) {
				p := getPlacement(t, st, "p-web-1")
				if p.Observed != running || p.Reason != "up" {
					t.Errorf("placement = %v", p)
				}
				wantIndexes(t, "placement", p.CreateIndex, p.ModifyIndex, 11, applyIndex)
			},
		},
		{
			// A node's count of failed starts in a row: set with FAILED, kept while the
			// placement is stopped and when the scheduler rewrites it, reset by RUNNING.
			name: "failures in a row",
			pre: []*statev1.Command{
				{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{
					Id: "p-web-1", Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, Reason: "disk full", Failures: 3}}},
				cmdPutPlacements(&statev1.Placement{Id: "p-web-1", ComponentId: "c-web", DeploymentId: "d-web-1", NodeId: "n1", Desired: stop, Epoch: 2}),
			},
			cmd: cmdSetObserved("p-web-1", statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED, ""),
			check: func(t *testing.T, st *Store, _ []byte) {
				if p := getPlacement(t, st, "p-web-1"); p.Failures != 3 {
					t.Errorf("stopped after failing: %v", p)
				}
				if err := st.Apply(applyIndex+1, cmdSetObserved("p-web-1", running, "")); err != nil {
					t.Fatal(err)
				}
				if p := getPlacement(t, st, "p-web-1"); p.Failures != 0 {
					t.Errorf("running: %v", p)
				}
			},
		},
		{name: "set observed of unknown placement", cmd: cmdSetObserved("p-nope", running, ""), want: ErrNotFound},
		{name: "set observed unspecified", cmd: cmdSetObserved("p-web-1", 0, ""), want: ErrInvalid},
		{name: "set observed out of range", cmd: cmdSetObserved("p-web-1", 6, ""), want: ErrInvalid},

		{
			name: "delete placements",
			cmd:  cmdDeletePlacements("p-web-1", "p-api-1", "p-web-1"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if ps := st.Placements(""); len(ps) != 1 || ps[0].Id != "p-web-2" {
					t.Errorf("placements = %v", ps)
				}
			},
		},
		{name: "delete placements with one unknown", cmd: cmdDeletePlacements("p-web-1", "p-nope"), want: ErrNotFound},
	})
}

// ---- users, tokens, GitHub links ----

func TestApplyUsersTokensLinks(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "create user",
			cmd:  cmdCreateUser(&statev1.User{Id: "u2", Name: "bob"}),
			check: func(t *testing.T, st *Store, _ []byte) {
				us := st.State().Users
				if len(us) != 2 || us[1].Name != "bob" {
					t.Fatalf("users = %v", us)
				}
				wantTime(t, "create time", us[1].CreateTime, applyIndex)
			},
		},
		{name: "create nil user", cmd: cmdCreateUser(nil), want: ErrInvalid},
		{name: "create user without id", cmd: cmdCreateUser(&statev1.User{Name: "bob"}), want: ErrInvalid},
		{name: "create user without name", cmd: cmdCreateUser(&statev1.User{Id: "u2"}), want: ErrInvalid},
		{name: "create user duplicate id", cmd: cmdCreateUser(&statev1.User{Id: "u1", Name: "bob"}), want: ErrAlreadyExists},
		{name: "create user duplicate name", cmd: cmdCreateUser(&statev1.User{Id: "u2", Name: "alice"}), want: ErrAlreadyExists},

		{
			name: "create token",
			cmd:  cmdCreateToken(&statev1.ApiToken{Id: "k2", UserId: "u1", Name: "laptop", Sha256: sha(2)}),
			check: func(t *testing.T, st *Store, _ []byte) {
				k, err := st.TokenBySHA256(sha(2))
				if err != nil {
					t.Fatalf("TokenBySHA256: %v", err)
				}
				if k.Id != "k2" || k.UserId != "u1" {
					t.Errorf("token = %v", k)
				}
				wantTime(t, "create time", k.CreateTime, applyIndex)
			},
		},
		{name: "create nil token", cmd: cmdCreateToken(nil), want: ErrInvalid},
		{name: "create token without id", cmd: cmdCreateToken(&statev1.ApiToken{UserId: "u1", Sha256: sha(2)}), want: ErrInvalid},
		{name: "create token short hash", cmd: cmdCreateToken(&statev1.ApiToken{Id: "k2", UserId: "u1", Sha256: sha(2)[:31]}), want: ErrInvalid},
		{name: "create token for unknown user", cmd: cmdCreateToken(&statev1.ApiToken{Id: "k2", UserId: "u9", Sha256: sha(2)}), want: ErrNotFound},
		{name: "create token duplicate id", cmd: cmdCreateToken(&statev1.ApiToken{Id: "k1", UserId: "u1", Sha256: sha(2)}), want: ErrAlreadyExists},

		{
			name: "delete token",
			cmd:  cmdDeleteToken("k1"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if _, err := st.TokenBySHA256(sha(1)); !errors.Is(err, ErrNotFound) {
					t.Errorf("TokenBySHA256 after delete: %v", err)
				}
			},
		},
		{name: "delete unknown token", cmd: cmdDeleteToken("k9"), want: ErrNotFound},

		{
			name: "put link replaces",
			cmd:  cmdPutLink(&statev1.GithubLink{ComponentId: "c-web", Repo: "acme/web2", Branch: "dev", HookId: 9, Secret: []byte("new")}),
			check: func(t *testing.T, st *Store, _ []byte) {
				l, err := st.GithubLink("c-web")
				if err != nil {
					t.Fatal(err)
				}
				if l.Repo != "acme/web2" || l.Branch != "dev" || l.HookId != 9 || string(l.Secret) != "new" {
					t.Errorf("link = %v", l)
				}
			},
		},
		{name: "put nil link", cmd: cmdPutLink(nil), want: ErrInvalid},
		{name: "put link for unknown component", cmd: cmdPutLink(&statev1.GithubLink{ComponentId: "c-nope", Repo: "a/b", Branch: "main"}), want: ErrNotFound},
		{name: "put link without repo", cmd: cmdPutLink(&statev1.GithubLink{ComponentId: "c-web", Branch: "main"}), want: ErrInvalid},
		{name: "put link bad repo", cmd: cmdPutLink(&statev1.GithubLink{ComponentId: "c-web", Repo: "a/b/c", Branch: "main"}), want: ErrInvalid},
		{name: "put link without branch", cmd: cmdPutLink(&statev1.GithubLink{ComponentId: "c-web", Repo: "a/b"}), want: ErrInvalid},

		{
			name: "delete link",
			cmd:  cmdDeleteLink("c-web"),
			check: func(t *testing.T, st *Store, _ []byte) {
				if _, err := st.GithubLink("c-web"); !errors.Is(err, ErrNotFound) {
					t.Errorf("GithubLink after delete: %v", err)
				}
				getComponent(t, st, "web")
			},
		},
		{name: "delete unknown link", cmd: cmdDeleteLink("c-nope"), want: ErrNotFound},
	})
}

// ---- envelopes ----

func TestApplyEnvelope(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "no op with ignore_if_unknown is a no-op",
			cmd:  &statev1.Command{IgnoreIfUnknown: true},
			check: func(t *testing.T, st *Store, before []byte) {
				if after := stateBytes(t, st); !bytes.Equal(before, after) {
					t.Errorf("ignored command changed the state:\n%s", diffStates(before, after))
				}
			},
		},
		{name: "no op without ignore_if_unknown", cmd: &statev1.Command{}, want: ErrUnknownCommand},
		{name: "nil command", cmd: nil, want: ErrInvalid},
	})
}

// futureCommand is the encoding of a Command whose op is a oneof field this version does not
// know (field 999), as a newer leader would write it.
func futureCommand(t testing.TB, ignore bool) []byte {
	t.Helper()
	b, err := EncodeCommand(&statev1.Command{Time: at(1), IgnoreIfUnknown: ignore})
	if err != nil {
		t.Fatal(err)
	}
	payload := protowire.AppendTag(nil, 1, protowire.BytesType)
	payload = protowire.AppendString(payload, "from the future")
	b = protowire.AppendTag(b, 999, protowire.BytesType)
	return protowire.AppendBytes(b, payload)
}

func TestApplyUnknownOneofField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ignore bool
		want   error
	}{
		{"ignored with the flag", true, nil},
		{"rejected without the flag", false, ErrUnknownCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := futureCommand(t, tc.ignore)
			cmd, err := DecodeCommand(data)
			if err != nil {
				t.Fatalf("DecodeCommand: %v", err)
			}
			if cmd.GetOp() != nil {
				t.Fatalf("op = %v, want none", cmd.GetOp())
			}
			if len(cmd.ProtoReflect().GetUnknown()) == 0 {
				t.Errorf("unknown field was dropped")
			}

			f := New()
			for i, c := range fixtureCommands() {
				if err := f.Store.Apply(uint64(i+1), c); err != nil {
					t.Fatal(err)
				}
			}
			before := stateBytes(t, f.Store)
			res, ok := f.Apply(&raft.Log{Index: applyIndex, Data: data}).(*Result)
			if !ok {
				t.Fatalf("Apply did not return *Result")
			}
			if res.Index != applyIndex || !errors.Is(res.Err, tc.want) || (tc.want == nil) != (res.Err == nil) {
				t.Errorf("result = %+v, want index %d, err %v", res, applyIndex, tc.want)
			}
			if f.Store.Index() != applyIndex {
				t.Errorf("Index() = %d", f.Store.Index())
			}
			if after := stateBytes(t, f.Store); !bytes.Equal(before, after) {
				t.Errorf("unknown command changed the state:\n%s", diffStates(before, after))
			}
		})
	}
}

// TestApplyCopiesCommand checks that the store keeps its own copy of what a command carries:
// changing the command's payload after Apply does not reach into the state.
func TestApplyCopiesCommand(t *testing.T) {
	st := fixture(t)
	comp := newComponent(nil)
	node := testNode("n3")
	ps := []*statev1.Placement{mkPlacement("p-new", "c-web", "d-web-1", "n1", 1)}
	spec := withSpec(func(s *statev1.ComponentSpec) {})
	link := &statev1.GithubLink{ComponentId: "c-web", Repo: "a/b", Branch: "main", Secret: []byte("abc")}
	for i, c := range []*statev1.Command{
		cmdCreateComponent(comp), cmdRegisterNode(node), cmdPutPlacements(ps...),
		cmdUpdateSpec("api", &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 2, Env: map[string]string{"K": "v"}}),
		cmdUpdateSpec("web", spec), cmdPutLink(link),
	} {
		if err := st.Apply(uint64(50+i), c); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	before := stateBytes(t, st)
	comp.Name, comp.Spec.ScaleMax = "changed", 99
	node.ApiAddr = "changed"
	ps[0].Epoch = 99
	spec.Env["GREETING"] = "changed"
	link.Secret[0] = 'X'
	if after := stateBytes(t, st); !bytes.Equal(before, after) {
		t.Errorf("changing a command after Apply changed the state:\n%s", diffStates(before, after))
	}
}

// TestApplyIndexNeverGoesBack applies a command at an index below the current one: the
// command takes effect but the index stays where it was.
func TestApplyIndexNeverGoesBack(t *testing.T) {
	st := fixture(t)
	if err := st.Apply(3, cmdScale("web", 2)); err != nil {
		t.Fatal(err)
	}
	if st.Index() != fixtureIndex {
		t.Errorf("Index() = %d, want %d", st.Index(), fixtureIndex)
	}
}

// TestDeploymentLifecycle walks a deployment through the states of the design:
// pending → building → ready → active, and a second one pending → building → failed.
func TestDeploymentLifecycle(t *testing.T) {
	st := fixture(t)
	building := statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING
	steps := []struct {
		cmd  *statev1.Command
		want error
	}{
		{cmdCreateDeployment(&statev1.Deployment{Id: "d1", ComponentId: "c-api"}), nil},
		{cmdActivate("c-api", "d1"), ErrInvalid},
		{cmdSetDeploymentStatus("d1", building, "", ""), nil},
		{cmdSetDeploymentStatus("d1", building, "", ""), nil},
		{cmdActivate("c-api", "d1"), ErrInvalid},
		{cmdSetDeploymentStatus("d1", stReady, "sha256:d1", ""), nil},
		{cmdSetDeploymentStatus("d1", building, "", ""), ErrInvalid},
		{cmdActivate("c-api", "d1"), nil},
		{cmdCreateDeployment(&statev1.Deployment{Id: "d2", ComponentId: "c-api"}), nil},
		{cmdSetDeploymentStatus("d2", building, "", ""), nil},
		{cmdSetDeploymentStatus("d2", stFailed, "", "compile error"), nil},
		{cmdSetDeploymentStatus("d2", stFailed, "", "again"), ErrInvalid},
		{cmdSetDeploymentStatus("d2", building, "", ""), ErrInvalid},
		{cmdActivate("c-api", "d2"), ErrInvalid},
	}
	for i, s := range steps {
		err := st.Apply(uint64(50+i), s.cmd)
		if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Fatalf("step %d (%v): err = %v, want %v", i, s.cmd, err, s.want)
		}
	}
	c := getComponent(t, st, "api")
	if c.ActiveDeploymentId != "d1" {
		t.Errorf("active deployment = %q, want d1", c.ActiveDeploymentId)
	}
	ds := st.Deployments("c-api")
	if len(ds) != 3 || ds[0].Id != "d-api-1" || ds[1].Id != "d1" || ds[2].Id != "d2" {
		t.Errorf("Deployments(c-api) = %v, want d-api-1, d1, d2 oldest first", ds)
	}
	if ds[2].Error != "compile error" {
		t.Errorf("failed deployment error = %q", ds[2].Error)
	}
	if err := checkInvariants(st); err != nil {
		t.Error(err)
	}
}

// TestCommandRoundTrip checks that EncodeCommand and DecodeCommand agree, for every command
// of the fixture.
func TestCommandRoundTrip(t *testing.T) {
	for i, c := range fixtureCommands() {
		c.Time, c.IgnoreIfUnknown = at(uint64(i)), i%2 == 0
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(c, got) {
			t.Errorf("round trip of %v gave %v", c, got)
		}
	}
}

// TestCanaryAndFallback: activating a newer deployment while the active one runs starts a
// canary (not with a 0% canary, not on a rollback); EndCanary ends it; a failed rollout's
// one entry fails the new deployment and activates the fallback; a first deployment that
// fails is deactivated; the first RUNNING report marks a deployment served.
func TestCanaryAndFallback(t *testing.T) {
	st := fixture(t)
	idx := uint64(100)
	apply := func(cmd *statev1.Command) error {
		idx++
		return st.Apply(idx, cmd)
	}
	must := func(cmd *statev1.Command) {
		t.Helper()
		if err := apply(cmd); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	running := statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING
	ready := func(id string) {
		must(cmdCreateDeployment(&statev1.Deployment{Id: id, ComponentId: "c-api"}))
		must(cmdSetDeploymentStatus(id, stReady, "sha256:"+id, ""))
	}
	ready("d1")
	must(cmdActivate("c-api", "d1"))
	must(cmdPutPlacements(&statev1.Placement{Id: "p1", ComponentId: "c-api", DeploymentId: "d1", NodeId: "n1", Desired: run, Epoch: 1}))
	must(cmdSetObserved("p1", running, ""))
	if !getDeployment(t, st, "d1").Served {
		t.Fatal("a RUNNING report did not mark its deployment served")
	}
	ready("d2")
	must(cmdActivate("c-api", "d2"))
	if !getDeployment(t, st, "d2").Canary {
		t.Fatal("a newer deployment replacing a running one is not in a canary")
	}
	// A failed canary: one entry fails d2 and activates d1 again.
	if err := apply(cmdSetDeploymentStatus("d2", stFailed, "", "canary failed")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("failing the active deployment without a fallback: %v", err)
	}
	must(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: "d2", Status: stFailed, Error: "canary failed", Fallback: "d1"}}})
	if c := getComponent(t, st, "api"); c.ActiveDeploymentId != "d1" || getDeployment(t, st, "d2").Canary || getDeployment(t, st, "d1").Canary {
		t.Fatalf("after the failed canary: active %q, d1 %v, d2 %v", c.ActiveDeploymentId, getDeployment(t, st, "d1"), getDeployment(t, st, "d2"))
	}
	// A good canary ends with EndCanary; a rollback to an older one has none.
	ready("d3")
	must(cmdActivate("c-api", "d3"))
	must(&statev1.Command{Op: &statev1.Command_EndCanary{EndCanary: &statev1.EndCanary{DeploymentId: "d3"}}})
	if getDeployment(t, st, "d3").Canary {
		t.Fatal("EndCanary left the canary on")
	}
	if err := apply(&statev1.Command{Op: &statev1.Command_EndCanary{EndCanary: &statev1.EndCanary{DeploymentId: "d3"}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("EndCanary twice: %v", err)
	}
	must(cmdActivate("c-api", "d1"))
	if getDeployment(t, st, "d1").Canary {
		t.Fatal("a rollback started a canary")
	}
	// A version superseded in its canary is marked (never a fallback, sched); activated
	// again without a canary (a rollback to it) it is not any more.
	ready("d5")
	must(cmdActivate("c-api", "d5"))
	ready("d6")
	must(cmdActivate("c-api", "d6"))
	if d5 := getDeployment(t, st, "d5"); d5.Canary || !d5.CanarySuperseded {
		t.Fatalf("superseded in its canary: %v", d5)
	}
	if d6 := getDeployment(t, st, "d6"); d6.CanarySuperseded {
		t.Fatalf("superseding: %v", d6)
	}
	must(cmdActivate("c-api", "d5"))
	if d5 := getDeployment(t, st, "d5"); d5.Canary || d5.CanarySuperseded {
		t.Fatalf("rolled back to: %v", d5)
	}
	must(cmdActivate("c-api", "d1"))
	// 0%: no canary.
	c := getComponent(t, st, "api")
	sp := c.Spec
	sp.Rollout = &statev1.RolloutSpec{CanaryPercent: 0, WindowMs: 1000}
	must(cmdUpdateSpec("api", sp))
	ready("d4")
	must(cmdActivate("c-api", "d4"))
	if getDeployment(t, st, "d4").Canary {
		t.Fatal("a 0% canary started")
	}
	// A deployment of a component with nothing else to fall back on is deactivated.
	must(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: "d4", Status: stFailed, Error: "every instance failed", Deactivate: true}}})
	if c := getComponent(t, st, "api"); c.ActiveDeploymentId != "" {
		t.Fatalf("a deactivated deployment is still active: %q", c.ActiveDeploymentId)
	}
	if err := checkInvariants(st); err != nil {
		t.Error(err)
	}
}

// The autoscaler's scale applies only while the component is as it read it.
func TestScaleConditionalOnModifyIndex(t *testing.T) {
	st := NewStore()
	apply := applier(t, st)
	apply(cmdCreateComponent(webComponent()))
	c, _ := st.Component("web")
	read := c.ModifyIndex
	apply(cmdScale("web", 2)) // a user's scale: unconditional
	stale := cmdScale("web", 3)
	stale.GetScaleComponent().IfModifyIndex = read
	if err := st.Apply(st.Index()+1, stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("a scale decided before a user's: %v, want ErrConflict", err)
	}
	c, _ = st.Component("web")
	if c.Replicas != 2 {
		t.Fatalf("replicas %d after a refused conditional scale", c.Replicas)
	}
	fresh := cmdScale("web", 3)
	fresh.GetScaleComponent().IfModifyIndex = c.ModifyIndex
	if err := st.Apply(st.Index()+1, fresh); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Component("web"); c.Replicas != 3 {
		t.Fatalf("replicas %d after a current conditional scale", c.Replicas)
	}
}

// A spec read, edited and sent back whole applies only while the component is as it was read:
// it never erases a change committed since (another user's edit).
func TestUpdateSpecConditionalOnModifyIndex(t *testing.T) {
	st := NewStore()
	apply := applier(t, st)
	apply(cmdCreateComponent(webComponent()))
	c, _ := st.Component("web")
	read := c.ModifyIndex
	other := clone(c.Spec)
	other.ScaleMax++
	apply(cmdUpdateSpec("web", other)) // another user's edit: unconditional
	mine := clone(c.Spec)
	mine.Env = map[string]string{"MINE": "1"}
	stale := cmdUpdateSpec("web", mine)
	stale.GetUpdateComponentSpec().IfModifyIndex = read
	if err := st.Apply(st.Index()+1, stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("an edit of a spec read before another user's edit: %v, want ErrConflict", err)
	}
	c, _ = st.Component("web")
	if c.Spec.ScaleMax != other.ScaleMax || c.Spec.Env["MINE"] != "" {
		t.Fatalf("spec %v after a refused conditional update", c.Spec)
	}
	fresh := cmdUpdateSpec("web", mine)
	fresh.GetUpdateComponentSpec().IfModifyIndex = c.ModifyIndex
	if err := st.Apply(st.Index()+1, fresh); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Component("web"); c.Spec.Env["MINE"] != "1" {
		t.Fatalf("spec %v after a current conditional update", c.Spec)
	}
}
