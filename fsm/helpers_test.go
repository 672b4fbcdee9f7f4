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
	"github.com/velocity9/v9/spec"
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

// cmdFailUnfinished is the failure an upload that ended unfinished writes.
func cmdFailUnfinished(id, msg string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, Error: msg, IfUnfinished: true,
	}}}
}

func cmdActivate(componentID, deploymentID string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_ActivateDeployment{ActivateDeployment: &statev1.ActivateDeployment{ComponentId: componentID, DeploymentId: deploymentID}}}
}

// cmdBecomeActive: a deployment becomes ready and active in one step, as a build or an
// upload ends (cmdActivate is the explicit activation of a rollback).
func cmdBecomeActive(deploymentID, digest string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: deploymentID, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: digest, Activate: true}}}
}

// applier returns a function that applies commands to st at the next index, stamped with
// the time, failing the test on a refusal.
func applier(t *testing.T, st *Store) func(*statev1.Command) {
	var idx uint64
	return func(cmd *statev1.Command) {
		t.Helper()
		idx++
		cmd.Time = timestamppb.Now()
		if err := st.Apply(idx, cmd); err != nil {
			t.Fatalf("apply %v: %v", cmd, err)
		}
	}
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
		cmdCreateDeployment(&statev1.Deployment{Id: "d-web-1", ComponentId: "c-web", CommitSha: "aaa"}),
		cmdCreateDeployment(&statev1.Deployment{Id: "d-web-2", ComponentId: "c-web", CommitSha: "bbb"}),
		cmdCreateDeployment(&statev1.Deployment{Id: "d-api-1", ComponentId: "c-api"}),
		cmdCreateDeployment(&statev1.Deployment{Id: "d-web-3", ComponentId: "c-web", CommitSha: "ccc"}),
		cmdSetDeploymentStatus("d-web-3", stFailed, "", "build failed"),
		cmdBecomeActive("d-web-1", "sha256:01"),
		cmdPutPlacements(
			mkPlacement("p-web-1", "c-web", "d-web-1", "n1", 1),
			mkPlacement("p-web-2", "c-web", "d-web-1", "n2", 1),
			mkPlacement("p-api-1", "c-api", "d-api-1", "n1", 1),
		),
		cmdBecomeActive("d-api-1", "sha256:02"),
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
	for _, s := range []error{ErrNotFound, ErrAlreadyExists, ErrInvalid, ErrConflict, ErrUnknownCommand, ErrDecode} {
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
			// Only READY deployments can be activated, and an active one cannot fail.
			if d.Status != stReady {
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
		if _, ok := t.users[k.UserId]; k.UserId != "" && !ok {
			return fmt.Errorf("token %q: user %q does not exist", id, k.UserId)
		}
		if t.tokenByHash[string(k.Sha256)] != id {
			return fmt.Errorf("token %q: not indexed by its hash", id)
		}
	}
	if len(t.tokenByHash) != len(t.tokens) {
		return fmt.Errorf("%d token hashes indexed for %d tokens", len(t.tokenByHash), len(t.tokens))
	}
	if len(t.audits()) > AuditSize || len(t.auditLog) >= 2*AuditSize+1 {
		return fmt.Errorf("audit log holds %d entries (%d kept)", len(t.audits()), len(t.auditLog))
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

// chooser supplies the choices of the command generator. The generator never asks for more
// than 256 choices at once, so that one byte of fuzz input can make any choice.
type chooser interface {
	intn(n int) int
}

type randChooser struct{ r interface{ Intn(int) int } }

func (c randChooser) intn(n int) int {
	if n > 256 {
		panic(fmt.Sprintf("generator asked for %d choices; a byte of fuzz input holds 256", n))
	}
	return c.r.Intn(n)
}

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

// recordingChooser draws from r and records its choices as bytes that a byteChooser
// replays: it turns seeded random programs into fuzz seeds.
type recordingChooser struct {
	r   interface{ Intn(int) int }
	out []byte
}

func (c *recordingChooser) intn(n int) int {
	if n > 256 {
		panic(fmt.Sprintf("generator asked for %d choices; a byte of fuzz input holds 256", n))
	}
	v := c.r.Intn(n)
	c.out = append(c.out, byte(v))
	return v
}

// Field values come from small pools, so that commands often collide and refer to one
// another. Most fields are drawn from a pool of good values and, one time in eight, from a
// pool of bad ones (unknown references, out-of-range numbers, empty ids, bad names), so that
// many commands are valid but wrong.
var (
	goodCompIDs = []string{"c1", "c2", "c3"}
	goodNames   = []string{"web", "api", "db"}
	badNames    = []string{"", "Web", "-x", "x-", "a.b", "a_b"}
	goodNodes   = []string{"n1", "n2", "n3"}
	goodDeps    = []string{"d1", "d2", "d3", "d4", "d5", "d6"}
	goodPlace   = []string{"p1", "p2", "p3", "p4"}
	goodUsers   = []string{"u1", "u2"}
	goodTokens  = []string{"k1", "k2", "k3"}
	badIDs      = []string{"", "zz", "c1", "d1", "n1"} // empty, unknown, or an id of another kind
	goodMins    = []uint32{0, 1, 1, 2}
	goodMaxes   = []uint32{1, 2, 3, 5}
	badNums     = []uint32{0, 4, spec.MaxScale, spec.MaxScale + 1, 1<<32 - 1}
	goodEpochs  = []uint64{1, 2, 3}
	badEpochs   = []uint64{0, 1 << 63}
	badEnums    = []int32{-1, 0, 5, 6, 99}
	goodDigests = []string{"sha256:aa", "sha256:bb"}
	goodRepos   = []string{"acme/web", "acme/api"}
	badRepos    = []string{"", "nope", "a/b/c"}
	goodEnv     = []map[string]string{nil, {"A": "1"}, {"A": "1", "B": "2", "C_3": "x"}}
	badEnv      = []map[string]string{{"V9_X": "1"}, {"1BAD": "x"}, {"a-b": "x", "OK": "y"}, {"": "x"}}
)

func pick[T any](c chooser, pool []T) T { return pool[c.intn(len(pool))] }

// maybe picks from good seven times in eight and from bad otherwise, with a single choice
// (len(good)*len(bad)*8 must not exceed 256).
func maybe[T any](c chooser, good, bad []T) T {
	gb := len(good) * len(bad)
	if v := c.intn(8 * gb); v < 7*gb {
		return good[v%len(good)]
	} else {
		return bad[v%len(bad)]
	}
}

// enum picks a value in [lo, hi], or about once in eight a value out of range.
func enum(c chooser, lo, hi int32) int32 {
	good := make([]int32, 0, hi-lo+1)
	for v := lo; v <= hi; v++ {
		good = append(good, v)
	}
	return maybe(c, good, badEnums)
}

// nameFor picks a name that usually goes with component id (c1 is web, c2 api, c3 db).
func nameFor(c chooser, id string) string {
	for i, cid := range goodCompIDs {
		if cid == id {
			return maybe(c, goodNames[i:i+1], append(badNames, goodNames...))
		}
	}
	return maybe(c, goodNames, badNames)
}

// depFor picks a deployment id that usually goes with component compID (c1 owns d1 and
// d4, c2 owns d2 and d5, ...), so that commands referring to both are often consistent.
func depFor(c chooser, compID string) string {
	for i, id := range goodCompIDs {
		if id == compID {
			own := []string{goodDeps[i], goodDeps[i+len(goodCompIDs)]}
			return maybe(c, own, goodDeps)
		}
	}
	return maybe(c, goodDeps, badIDs)
}

func genSpec(c chooser) *statev1.ComponentSpec {
	if c.intn(16) == 0 {
		return nil
	}
	s := &statev1.ComponentSpec{
		Env:       maybe(c, goodEnv, badEnv),
		ScaleMax:  maybe(c, goodMaxes, badNums),
		Exclusive: c.intn(8) == 0,
	}
	// Mostly min <= max, and mostly at least 1 so that container specs pass.
	s.ScaleMin = min(maybe(c, goodMins, badNums), s.ScaleMax)
	if c.intn(8) == 0 {
		s.ScaleMin = maybe(c, goodMins, badNums)
	}
	if c.intn(2) == 0 {
		s.Wasm = &statev1.WasmSpec{Module: "m.wasm", Build: maybe(c, []string{"", "go"}, []string{"rust"})}
	}
	return s
}

func genPlacement(c chooser) *statev1.Placement {
	comp := maybe(c, goodCompIDs, badIDs)
	return &statev1.Placement{
		Id:           maybe(c, goodPlace, badIDs),
		ComponentId:  comp,
		DeploymentId: depFor(c, comp),
		NodeId:       maybe(c, goodNodes, badIDs),
		Desired:      statev1.PlacementDesired(enum(c, 1, 2)),
		Observed:     statev1.PlacementObserved(enum(c, 0, 5)),
		Epoch:        maybe(c, goodEpochs, badEpochs),
	}
}

// replicasFor picks a replica count, mostly within the range of s.
func replicasFor(c chooser, s *statev1.ComponentSpec) uint32 {
	if s == nil || s.ScaleMin > s.ScaleMax || c.intn(8) == 0 {
		return pick(c, badNums)
	}
	span := min(s.ScaleMax-s.ScaleMin, 7)
	return s.ScaleMin + uint32(c.intn(int(span)+1))
}

// numOps is the number of operations genOp builds: the 20 ops of Command and one command
// without an op.
const numOps = 21

// opWeights says how often genCommand picks each op of genOp, so that entities get created
// more often than they are deleted and states grow interesting.
var opWeights = [numOps]int{
	0: 6, 1: 2, 2: 1, 3: 3, 4: 1, // components
	5: 3, 6: 2, 7: 1, // nodes
	8: 6, 9: 6, 10: 4, // deployments
	11: 5, 12: 3, 13: 1, // placements
	14: 2, 15: 2, 16: 1, 17: 2, 18: 1, // users, tokens, links
	19: 2, // linked create
	20: 1, // no op
}

var totalOpWeight = func() int {
	n := 0
	for _, w := range opWeights {
		n += w
	}
	return n
}()

// genCommand builds one command from the choices of c. It carries no time: the caller
// stamps it, as the leader does.
func genCommand(c chooser) *statev1.Command {
	r := c.intn(totalOpWeight)
	op := 0
	for r >= opWeights[op] {
		r -= opWeights[op]
		op++
	}
	return genOp(c, op)
}

// genOp builds a command of op number op (0 to numOps-1).
func genOp(c chooser, op int) *statev1.Command {
	var cmd *statev1.Command
	switch op {
	case 0:
		id := maybe(c, goodCompIDs, badIDs)
		comp := &statev1.Component{
			Id:      id,
			Name:    nameFor(c, id),
			Runtime: statev1.Runtime(enum(c, 1, 2)),
			Spec:    genSpec(c),
			Desired: statev1.DesiredState(enum(c, 0, 2)),
		}
		comp.Replicas = replicasFor(c, comp.Spec)
		if c.intn(4) == 0 {
			comp.Source = &statev1.Source{GithubRepo: maybe(c, goodRepos, badRepos), Branch: maybe(c, []string{"main"}, []string{""})}
		}
		if c.intn(16) == 0 {
			comp.ActiveDeploymentId = pick(c, goodDeps)
		}
		if c.intn(32) == 0 {
			comp = nil
		}
		cmd = cmdCreateComponent(comp)
	case 1:
		cmd = cmdUpdateSpec(maybe(c, goodNames, badNames), genSpec(c))
	case 2:
		cmd = cmdSetDesired(maybe(c, goodNames, badNames), statev1.DesiredState(enum(c, 1, 2)))
	case 3:
		cmd = cmdScale(maybe(c, goodNames, badNames), maybe(c, []uint32{0, 1, 2, 3}, badNums))
	case 4:
		cmd = cmdDeleteComponent(maybe(c, goodNames, badNames))
	case 5:
		n := testNode(maybe(c, goodNodes, badIDs))
		n.Status = statev1.NodeStatus(enum(c, 0, 3))
		if c.intn(8) == 0 {
			n.RaftAddr = ""
		}
		if c.intn(8) == 0 {
			n.Runtimes = append(n.Runtimes, statev1.Runtime(pick(c, badEnums)))
		}
		cmd = cmdRegisterNode(n)
	case 6:
		cmd = cmdSetNodeStatus(maybe(c, goodNodes, badIDs), statev1.NodeStatus(enum(c, 1, 3)))
	case 7:
		cmd = cmdRemoveNode(maybe(c, goodNodes, badIDs))
	case 8:
		comp := maybe(c, goodCompIDs, badIDs)
		cmd = cmdCreateDeployment(&statev1.Deployment{
			Id:             depFor(c, comp),
			ComponentId:    comp,
			CommitSha:      "abc",
			Status:         statev1.DeploymentStatus(pick(c, []int32{0, 1, 3, 3, 2, 4, -1})),
			ArtifactDigest: maybe(c, goodDigests, []string{""}),
		})
	case 9:
		cmd = cmdSetDeploymentStatus(maybe(c, goodDeps, badIDs), statev1.DeploymentStatus(enum(c, 2, 4)),
			maybe(c, goodDigests, []string{""}), pick(c, []string{"", "boom"}))
	case 10:
		comp := maybe(c, goodCompIDs, badIDs)
		cmd = cmdActivate(comp, depFor(c, comp))
	case 11:
		ps := make([]*statev1.Placement, pick(c, []int{0, 1, 1, 1, 1, 2, 3}))
		for i := range ps {
			ps[i] = genPlacement(c)
		}
		cmd = cmdPutPlacements(ps...)
	case 12:
		cmd = cmdSetObserved(maybe(c, goodPlace, badIDs), statev1.PlacementObserved(enum(c, 1, 5)), pick(c, []string{"", "oom"}))
	case 13:
		ids := make([]string, c.intn(3))
		for i := range ids {
			ids[i] = maybe(c, goodPlace, badIDs)
		}
		cmd = cmdDeletePlacements(ids...)
	case 14:
		cmd = cmdCreateUser(&statev1.User{Id: maybe(c, goodUsers, badIDs), Name: maybe(c, []string{"alice", "bob", "carol"}, []string{""})})
	case 15:
		k := &statev1.ApiToken{Id: maybe(c, goodTokens, badIDs), UserId: maybe(c, goodUsers, badIDs), Sha256: sha(byte(c.intn(3)))}
		if c.intn(8) == 0 {
			k.Sha256 = k.Sha256[:31]
		}
		cmd = cmdCreateToken(k)
	case 16:
		cmd = cmdDeleteToken(maybe(c, goodTokens, badIDs))
	case 17:
		cmd = cmdPutLink(&statev1.GithubLink{
			ComponentId: maybe(c, goodCompIDs, badIDs),
			Repo:        maybe(c, goodRepos, badRepos),
			Branch:      maybe(c, []string{"main"}, []string{""}),
			HookId:      int64(c.intn(3)),
			Secret:      []byte("k"),
		})
	case 18:
		cmd = cmdDeleteLink(maybe(c, goodCompIDs, badIDs))
	case 19:
		id := maybe(c, goodCompIDs, badIDs)
		repo := maybe(c, goodRepos, badRepos)
		comp := &statev1.Component{
			Id: id, Name: nameFor(c, id), Runtime: statev1.Runtime(enum(c, 1, 2)), Spec: genSpec(c),
			Source: &statev1.Source{GithubRepo: repo, Branch: "main"},
		}
		comp.Replicas = replicasFor(c, comp.Spec)
		linkOf, depOf := id, id
		if c.intn(8) == 0 {
			linkOf = maybe(c, goodCompIDs, badIDs)
		}
		if c.intn(8) == 0 {
			depOf = maybe(c, goodCompIDs, badIDs)
		}
		cmd = cmdCreateLinked(comp,
			&statev1.GithubLink{ComponentId: linkOf, Repo: repo, Branch: "main", HookId: int64(c.intn(3)), Secret: []byte("k")},
			&statev1.Deployment{Id: depFor(c, id), ComponentId: depOf, CommitSha: "abc", Branch: "main"})
	default:
		cmd = &statev1.Command{}
	}
	cmd.IgnoreIfUnknown = c.intn(2) == 0
	return cmd
}
