package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Helpers shared by the tests of this package: command builders, a populated fixture store,
// state fingerprints, invariants, an in-memory raft.SnapshotSink and a command generator
// driven either by math/rand or by fuzz bytes.

var testEpoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is the leader-stamped time used for the command at a given index.
func at(sec uint64) *timestamppb.Timestamp {
	return timestamppb.New(testEpoch.Add(time.Duration(sec) * time.Second))
}

// ---- command builders ----

func cmdCreateComponent(c *statev1.Component) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: c}}}
}

func cmdUpdateSpec(name string, s *statev1.ComponentSpec) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_UpdateComponentSpec{UpdateComponentSpec: &statev1.UpdateComponentSpec{Name: name, Spec: s}}}
}

func cmdSetDesired(name string, d statev1.DesiredState) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{Name: name, Desired: d}}}
}

func cmdScale(name string, n uint32) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_ScaleComponent{ScaleComponent: &statev1.ScaleComponent{Name: name, Replicas: n}}}
}

func cmdDeleteComponent(name string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_DeleteComponent{DeleteComponent: &statev1.DeleteComponent{Name: name}}}
}

func cmdRegisterNode(n *statev1.Node) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: n}}}
}

func cmdSetNodeStatus(id string, s statev1.NodeStatus) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{Id: id, Status: s}}}
}

func cmdRemoveNode(id string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_RemoveNode{RemoveNode: &statev1.RemoveNode{Id: id}}}
}

func cmdCreateDeployment(d *statev1.Deployment) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: d}}}
}

func cmdSetDeploymentStatus(id string, s statev1.DeploymentStatus, digest, msg string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{Id: id, Status: s, ArtifactDigest: digest, Error: msg}}}
}

func cmdActivate(componentID, deploymentID string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_ActivateDeployment{ActivateDeployment: &statev1.ActivateDeployment{ComponentId: componentID, DeploymentId: deploymentID}}}
}

func cmdPutPlacements(ps ...*statev1.Placement) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: ps}}}
}

func cmdSetObserved(id string, o statev1.PlacementObserved, reason string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{Id: id, Observed: o, Reason: reason}}}
}

func cmdDeletePlacements(ids ...string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_DeletePlacements{DeletePlacements: &statev1.DeletePlacements{Ids: ids}}}
}

func cmdCreateUser(u *statev1.User) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_CreateUser{CreateUser: &statev1.CreateUser{User: u}}}
}

func cmdCreateToken(k *statev1.ApiToken) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_CreateApiToken{CreateApiToken: &statev1.CreateApiToken{Token: k}}}
}

func cmdDeleteToken(id string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_DeleteApiToken{DeleteApiToken: &statev1.DeleteApiToken{Id: id}}}
}

func cmdPutLink(l *statev1.GithubLink) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_PutGithubLink{PutGithubLink: &statev1.PutGithubLink{Link: l}}}
}

func cmdDeleteLink(componentID string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_DeleteGithubLink{DeleteGithubLink: &statev1.DeleteGithubLink{ComponentId: componentID}}}
}

// ---- fixture ----

const (
	stReady     = statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY
	stPending   = statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING
	stFailed    = statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED
	desRun      = statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	rtWasm      = statev1.Runtime_RUNTIME_WASM
	rtContainer = statev1.Runtime_RUNTIME_CONTAINER
)

func sha(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func wasmSpec() *statev1.ComponentSpec {
	return &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 3, Concurrency: 50, Env: map[string]string{"GREETING": "hi", "LANG": "en"}}
}

func containerSpec() *statev1.ComponentSpec {
	return &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 2, Container: &statev1.ContainerSpec{Image: "python:3.12"}}
}

func webComponent() *statev1.Component {
	return &statev1.Component{
		Id: "c-web", Name: "web", Owner: "u1", Runtime: rtWasm, Spec: wasmSpec(), Replicas: 1,
		Source: &statev1.Source{GithubRepo: "acme/web", Branch: "main"},
	}
}

func testNode(id string) *statev1.Node {
	return &statev1.Node{
		Id: id, ApiAddr: id + ":7900", ProxyAddr: id + ":8080", RaftAddr: id + ":7901",
		Runtimes: []statev1.Runtime{rtWasm, rtContainer},
	}
}

func mkPlacement(id, comp, dep, node string, ep uint64) *statev1.Placement {
	return &statev1.Placement{Id: id, ComponentId: comp, DeploymentId: dep, NodeId: node, Desired: desRun, Epoch: ep}
}

// fixtureIndex is the index of the last command of fixture.
const fixtureIndex = 16

// fixtureCommands builds a small cluster: components web (wasm, c-web) and api (container,
// c-api); nodes n1, n2; deployments d-web-1 (ready, active), d-web-2 (pending), d-web-3
// (failed), d-api-1 (ready); placements p-web-1 (n1), p-web-2 (n2), p-api-1 (n1); user u1
// with token k1; GitHub links for both components.
func fixtureCommands() []*statev1.Command {
	return []*statev1.Command{
		cmdCreateComponent(webComponent()),
		cmdCreateComponent(&statev1.Component{Id: "c-api", Name: "api", Runtime: rtContainer, Spec: containerSpec(), Replicas: 1}),
		cmdRegisterNode(testNode("n1")),
		cmdRegisterNode(testNode("n2")),
		cmdCreateDeployment(&statev1.Deployment{Id: "d-web-1", ComponentId: "c-web", CommitSha: "aaa", Status: stReady, ArtifactDigest: "sha256:01"}),
		cmdCreateDeployment(&statev1.Deployment{Id: "d-web-2", ComponentId: "c-web", CommitSha: "bbb"}),
		cmdCreateDeployment(&statev1.Deployment{Id: "d-api-1", ComponentId: "c-api", Status: stReady, ArtifactDigest: "sha256:02"}),
		cmdCreateDeployment(&statev1.Deployment{Id: "d-web-3", ComponentId: "c-web", CommitSha: "ccc"}),
		cmdSetDeploymentStatus("d-web-3", stFailed, "", "build failed"),
		cmdActivate("c-web", "d-web-1"),
		cmdPutPlacements(
			mkPlacement("p-web-1", "c-web", "d-web-1", "n1", 1),
			mkPlacement("p-web-2", "c-web", "d-web-1", "n2", 1),
			mkPlacement("p-api-1", "c-api", "d-api-1", "n1", 1),
		),
		cmdActivate("c-api", "d-api-1"),
		cmdCreateUser(&statev1.User{Id: "u1", Name: "alice"}),
		cmdCreateToken(&statev1.ApiToken{Id: "k1", UserId: "u1", Name: "ci", Sha256: sha(1)}),
		cmdPutLink(&statev1.GithubLink{ComponentId: "c-web", Repo: "acme/web", Branch: "main", HookId: 7, Secret: []byte("s3cret")}),
		cmdPutLink(&statev1.GithubLink{ComponentId: "c-api", Repo: "acme/api", Branch: "main", HookId: 8, Secret: []byte("other")}),
	}
}

// fixture returns a store holding fixtureCommands, applied at indexes 1..fixtureIndex with
// times at(index).
func fixture(t testing.TB) *Store {
	t.Helper()
	st := NewStore()
	for i, c := range fixtureCommands() {
		idx := uint64(i + 1)
		c.Time = at(idx)
		if err := st.Apply(idx, c); err != nil {
			t.Fatalf("fixture command %d (%v): %v", idx, c, err)
		}
	}
	if st.Index() != fixtureIndex {
		t.Fatalf("fixture index = %d, want %d", st.Index(), fixtureIndex)
	}
	return st
}

// ---- fingerprints ----

func encodeState(t testing.TB, s *statev1.State) []byte {
	t.Helper()
	b, err := EncodeSnapshot(s)
	if err != nil {
		t.Fatalf("encode snapshot: %v", err)
	}
	return b
}

// stateBytes is the deterministic encoding of the store's state without its index, so that
// a failed command (which advances the index only) leaves it unchanged.
func stateBytes(t testing.TB, st *Store) []byte {
	t.Helper()
	s := st.State()
	s.Index = 0
	return encodeState(t, s)
}

// diffStates describes how two states differ, for failure messages.
func diffStates(a, b []byte) string {
	var sa, sb statev1.State
	if err := proto.Unmarshal(a, &sa); err != nil {
		return err.Error()
	}
	if err := proto.Unmarshal(b, &sb); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("before: %v\nafter:  %v", &sa, &sb)
}

// errClass names the sentinel an Apply error wraps, so that replicas can be compared on the
// outcome of a command even where the text of the error may differ.
func errClass(err error) string {
	for _, s := range []error{ErrNotFound, ErrAlreadyExists, ErrInvalid, ErrUnknownCommand, ErrDecode} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return "ok"
}

// ---- invariants ----

// checkInvariants verifies the rules every reachable state keeps. It reads the tables
// directly, so the caller must not apply concurrently.
func checkInvariants(st *Store) error {
	st.mu.RLock()
	defer st.mu.RUnlock()
	t := st.s
	if len(t.byName) != len(t.components) {
		return fmt.Errorf("byName has %d entries, components %d", len(t.byName), len(t.components))
	}
	for name, id := range t.byName {
		c, ok := t.components[id]
		if !ok {
			return fmt.Errorf("byName[%q] = %q: no such component", name, id)
		}
		if c.Name != name {
			return fmt.Errorf("byName[%q] = %q, whose name is %q", name, id, c.Name)
		}
	}
	for id, c := range t.components {
		if c.Id != id {
			return fmt.Errorf("component %q stored under %q", c.Id, id)
		}
		if err := ValidName(c.Name); err != nil {
			return fmt.Errorf("component %q: %v", id, err)
		}
		if t.byName[c.Name] != id {
			return fmt.Errorf("component %q (%q) missing from byName", id, c.Name)
		}
		if err := ValidSpec(c.Runtime, c.Spec); err != nil {
			return fmt.Errorf("component %q: %v", id, err)
		}
		if c.Replicas < c.Spec.ScaleMin || c.Replicas > c.Spec.ScaleMax {
			return fmt.Errorf("component %q: replicas %d outside [%d, %d]", id, c.Replicas, c.Spec.ScaleMin, c.Spec.ScaleMax)
		}
		if c.CreateIndex > c.ModifyIndex || c.ModifyIndex > t.index {
			return fmt.Errorf("component %q: create index %d, modify index %d, state index %d", id, c.CreateIndex, c.ModifyIndex, t.index)
		}
		if c.ActiveDeploymentId != "" {
			d, ok := t.deployments[c.ActiveDeploymentId]
			if !ok {
				return fmt.Errorf("component %q: active deployment %q does not exist", id, c.ActiveDeploymentId)
			}
			if d.ComponentId != id {
				return fmt.Errorf("component %q: active deployment %q belongs to %q", id, d.Id, d.ComponentId)
			}
			// Only READY deployments can be activated, but apply.go lets a READY deployment
			// move to FAILED afterwards, so FAILED is tolerated here.
			if d.Status != stReady && d.Status != stFailed {
				return fmt.Errorf("component %q: active deployment %q is %s", id, d.Id, d.Status)
			}
		}
	}
	for id, d := range t.deployments {
		if d.Id != id {
			return fmt.Errorf("deployment %q stored under %q", d.Id, id)
		}
		if _, ok := t.components[d.ComponentId]; !ok {
			return fmt.Errorf("deployment %q: component %q does not exist", id, d.ComponentId)
		}
		if d.Status == stReady && d.ArtifactDigest == "" {
			return fmt.Errorf("deployment %q is ready without an artifact digest", id)
		}
	}
	for id, p := range t.placements {
		if p.Id != id {
			return fmt.Errorf("placement %q stored under %q", p.Id, id)
		}
		if _, ok := t.components[p.ComponentId]; !ok {
			return fmt.Errorf("placement %q: component %q does not exist", id, p.ComponentId)
		}
		d, ok := t.deployments[p.DeploymentId]
		if !ok || d.ComponentId != p.ComponentId {
			return fmt.Errorf("placement %q: deployment %q is not one of component %q", id, p.DeploymentId, p.ComponentId)
		}
	}
	for id, n := range t.nodes {
		if n.Id != id || id == "" {
			return fmt.Errorf("node %q stored under %q", n.Id, id)
		}
	}
	for id, k := range t.tokens {
		if _, ok := t.users[k.UserId]; !ok {
			return fmt.Errorf("token %q: user %q does not exist", id, k.UserId)
		}
	}
	for id, l := range t.links {
		if _, ok := t.components[id]; !ok {
			return fmt.Errorf("github link of missing component %q", id)
		}
		if l.ComponentId != id {
			return fmt.Errorf("github link %q stored under %q", l.ComponentId, id)
		}
	}
	return nil
}

// ---- an in-memory raft.SnapshotSink ----

type memSink struct {
	bytes.Buffer
	writeErr         error
	closed, canceled bool
}

var _ raft.SnapshotSink = (*memSink)(nil)

func (s *memSink) ID() string { return "mem" }

func (s *memSink) Write(p []byte) (int, error) {
	if s.writeErr != nil {
		return 0, s.writeErr
	}
	return s.Buffer.Write(p)
}

func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.canceled = true; return nil }

// ---- command generator ----

// chooser supplies the choices of the command generator.
type chooser interface {
	intn(n int) int
}

type randChooser struct{ r interface{ Intn(int) int } }

func (c randChooser) intn(n int) int { return c.r.Intn(n) }

// byteChooser draws choices from fuzz input; it answers 0 once the input is spent.
type byteChooser struct {
	b []byte
	i int
}

func (c *byteChooser) intn(n int) int {
	if c.i >= len(c.b) {
		return 0
	}
	v := int(c.b[c.i]) % n
	c.i++
	return v
}

func (c *byteChooser) done() bool { return c.i >= len(c.b) }

// Pools of field values: small, so that commands often collide, refer to one another, or
// are valid but wrong (unknown references, out-of-range numbers, empty ids).
var (
	poolCompIDs   = []string{"", "c1", "c2", "c3"}
	poolNames     = []string{"", "web", "api", "db", "Web", "-x", "x-", "a.b"}
	poolNodes     = []string{"", "n1", "n2", "n3"}
	poolDeps      = []string{"", "d1", "d2", "d3", "d4", "d5"}
	poolPlace     = []string{"", "p1", "p2", "p3", "p4"}
	poolUsers     = []string{"", "u1", "u2"}
	poolUserNames = []string{"", "alice", "bob"}
	poolTokens    = []string{"", "k1", "k2", "k3"}
	poolNums      = []uint32{0, 1, 2, 3, 5, MaxReplicas, MaxReplicas + 1, 1<<32 - 1}
	poolEpochs    = []uint64{0, 1, 2, 7}
	poolEnums     = []int32{-1, 0, 1, 2, 3, 4, 5, 99}
	poolDigests   = []string{"", "sha256:aa", "sha256:bb"}
	poolRepos     = []string{"", "acme/web", "nope", "a/b/c"}
	poolBranches  = []string{"", "main"}
	poolBuilds    = []string{"", "go", "rust"}
	poolEnv       = []map[string]string{nil, {"A": "1"}, {"A": "1", "B": "2", "C_3": "x"}, {"V9_X": "1"}, {"1BAD": "x"}, {"a-b": "x", "OK": "y"}}
)

func pick[T any](c chooser, pool []T) T { return pool[c.intn(len(pool))] }

func genSpec(c chooser) *statev1.ComponentSpec {
	if c.intn(8) == 0 {
		return nil
	}
	s := &statev1.ComponentSpec{
		Env:       pick(c, poolEnv),
		ScaleMin:  pick(c, poolNums),
		ScaleMax:  pick(c, poolNums),
		Exclusive: c.intn(4) == 0,
	}
	if c.intn(2) == 0 {
		s.Wasm = &statev1.WasmSpec{Module: "m.wasm", Build: pick(c, poolBuilds)}
	}
	return s
}

func genPlacement(c chooser) *statev1.Placement {
	return &statev1.Placement{
		Id:           pick(c, poolPlace),
		ComponentId:  pick(c, poolCompIDs),
		DeploymentId: pick(c, poolDeps),
		NodeId:       pick(c, poolNodes),
		Desired:      statev1.PlacementDesired(pick(c, poolEnums)),
		Observed:     statev1.PlacementObserved(pick(c, poolEnums)),
		Epoch:        pick(c, poolEpochs),
	}
}

// numOps is the number of operations genCommand chooses among: the 19 ops of Command and
// one command without an op.
const numOps = 20

// genCommand builds one command from the choices of c.
func genCommand(c chooser) *statev1.Command {
	var cmd *statev1.Command
	switch c.intn(numOps) {
	case 0:
		comp := &statev1.Component{
			Id:       pick(c, poolCompIDs),
			Name:     pick(c, poolNames),
			Runtime:  statev1.Runtime(pick(c, poolEnums)),
			Spec:     genSpec(c),
			Replicas: pick(c, poolNums),
			Desired:  statev1.DesiredState(pick(c, poolEnums)),
		}
		if c.intn(4) == 0 {
			comp.Source = &statev1.Source{GithubRepo: pick(c, poolRepos), Branch: pick(c, poolBranches)}
		}
		if c.intn(8) == 0 {
			comp.ActiveDeploymentId = pick(c, poolDeps)
		}
		if c.intn(16) == 0 {
			comp = nil
		}
		cmd = cmdCreateComponent(comp)
	case 1:
		cmd = cmdUpdateSpec(pick(c, poolNames), genSpec(c))
	case 2:
		cmd = cmdSetDesired(pick(c, poolNames), statev1.DesiredState(pick(c, poolEnums)))
	case 3:
		cmd = cmdScale(pick(c, poolNames), pick(c, poolNums))
	case 4:
		cmd = cmdDeleteComponent(pick(c, poolNames))
	case 5:
		n := testNode(pick(c, poolNodes))
		n.Status = statev1.NodeStatus(pick(c, poolEnums))
		if c.intn(8) == 0 {
			n.RaftAddr = ""
		}
		if c.intn(8) == 0 {
			n.Runtimes = append(n.Runtimes, statev1.Runtime(pick(c, poolEnums)))
		}
		cmd = cmdRegisterNode(n)
	case 6:
		cmd = cmdSetNodeStatus(pick(c, poolNodes), statev1.NodeStatus(pick(c, poolEnums)))
	case 7:
		cmd = cmdRemoveNode(pick(c, poolNodes))
	case 8:
		cmd = cmdCreateDeployment(&statev1.Deployment{
			Id:             pick(c, poolDeps),
			ComponentId:    pick(c, poolCompIDs),
			CommitSha:      "abc",
			Status:         statev1.DeploymentStatus(pick(c, poolEnums)),
			ArtifactDigest: pick(c, poolDigests),
		})
	case 9:
		cmd = cmdSetDeploymentStatus(pick(c, poolDeps), statev1.DeploymentStatus(pick(c, poolEnums)), pick(c, poolDigests), pick(c, []string{"", "boom"}))
	case 10:
		cmd = cmdActivate(pick(c, poolCompIDs), pick(c, poolDeps))
	case 11:
		ps := make([]*statev1.Placement, c.intn(4))
		for i := range ps {
			ps[i] = genPlacement(c)
		}
		cmd = cmdPutPlacements(ps...)
	case 12:
		cmd = cmdSetObserved(pick(c, poolPlace), statev1.PlacementObserved(pick(c, poolEnums)), pick(c, []string{"", "oom"}))
	case 13:
		ids := make([]string, c.intn(3))
		for i := range ids {
			ids[i] = pick(c, poolPlace)
		}
		cmd = cmdDeletePlacements(ids...)
	case 14:
		cmd = cmdCreateUser(&statev1.User{Id: pick(c, poolUsers), Name: pick(c, poolUserNames)})
	case 15:
		k := &statev1.ApiToken{Id: pick(c, poolTokens), UserId: pick(c, poolUsers), Sha256: sha(byte(c.intn(3)))}
		if c.intn(8) == 0 {
			k.Sha256 = k.Sha256[:31]
		}
		cmd = cmdCreateToken(k)
	case 16:
		cmd = cmdDeleteToken(pick(c, poolTokens))
	case 17:
		cmd = cmdPutLink(&statev1.GithubLink{
			ComponentId: pick(c, poolCompIDs),
			Repo:        pick(c, poolRepos),
			Branch:      pick(c, poolBranches),
			HookId:      int64(c.intn(3)),
			Secret:      []byte("k"),
		})
	case 18:
		cmd = cmdDeleteLink(pick(c, poolCompIDs))
	default:
		cmd = &statev1.Command{}
	}
	cmd.IgnoreIfUnknown = c.intn(2) == 0
	cmd.Time = at(uint64(c.intn(1000)))
	return cmd
}
