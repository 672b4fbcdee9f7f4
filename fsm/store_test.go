package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// noOp changes nothing but the index.
func noOp() *statev1.Command { return &statev1.Command{IgnoreIfUnknown: true} }

type waitResult struct {
	idx uint64
	err error
}

func waitAsync(ctx context.Context, st *Store, min uint64) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		idx, err := st.WaitForIndex(ctx, min)
		ch <- waitResult{idx, err}
	}()
	return ch
}

// notYet fails the test if ch delivers within a short grace period. It cannot prove that a
// waiter blocks forever, only that it did not return early.
func notYet(t *testing.T, ch <-chan waitResult, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned early: %+v", what, r)
	case <-time.After(20 * time.Millisecond):
	}
}

func receive(t *testing.T, ch <-chan waitResult) waitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("WaitForIndex did not return")
		return waitResult{}
	}
}

func TestWaitForIndexBlocksUntilApplied(t *testing.T) {
	st := NewStore()
	ch := waitAsync(context.Background(), st, 5)
	for i := uint64(1); i <= 4; i++ {
		if err := st.Apply(i, noOp()); err != nil {
			t.Fatal(err)
		}
		notYet(t, ch, fmt.Sprintf("WaitForIndex(5) at index %d", i))
	}
	// A failed command advances the index all the same.
	if err := st.Apply(5, cmdScale("nope", 1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Apply: %v", err)
	}
	if r := receive(t, ch); r.idx != 5 || r.err != nil {
		t.Errorf("WaitForIndex(5) = %d, %v; want 5, nil", r.idx, r.err)
	}
}

func TestWaitForIndexPassesOver(t *testing.T) {
	st := NewStore()
	ch := waitAsync(context.Background(), st, 6)
	notYet(t, ch, "WaitForIndex(6) at index 0")
	if err := st.Apply(9, noOp()); err != nil { // raft indexes may skip (configuration entries)
		t.Fatal(err)
	}
	if r := receive(t, ch); r.idx != 9 || r.err != nil {
		t.Errorf("WaitForIndex(6) = %d, %v; want 9, nil", r.idx, r.err)
	}
}

func TestWaitForIndexAlreadyReached(t *testing.T) {
	st := fixture(t)
	for _, min := range []uint64{0, 1, fixtureIndex} {
		idx, err := st.WaitForIndex(context.Background(), min)
		if idx != fixtureIndex || err != nil {
			t.Errorf("WaitForIndex(%d) = %d, %v; want %d, nil", min, idx, err, fixtureIndex)
		}
	}
}

func TestWaitForIndexCancel(t *testing.T) {
	st := NewStore()
	if err := st.Apply(3, noOp()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := waitAsync(ctx, st, 10)
	notYet(t, ch, "WaitForIndex(10)")
	cancel()
	if r := receive(t, ch); r.idx != 3 || !errors.Is(r.err, context.Canceled) {
		t.Errorf("WaitForIndex after cancel = %d, %v; want 3, context.Canceled", r.idx, r.err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if idx, err := st.WaitForIndex(ctx, 10); idx != 3 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitForIndex with deadline = %d, %v; want 3, context.DeadlineExceeded", idx, err)
	}
}

func TestWaitForIndexManyWaiters(t *testing.T) {
	st := NewStore()
	var chs []<-chan waitResult
	for i := uint64(1); i <= 20; i++ {
		chs = append(chs, waitAsync(context.Background(), st, i))
	}
	for i := uint64(1); i <= 20; i++ {
		if err := st.Apply(i, noOp()); err != nil {
			t.Fatal(err)
		}
	}
	for i, ch := range chs {
		if r := receive(t, ch); r.err != nil || r.idx < uint64(i+1) {
			t.Errorf("waiter %d: %+v", i+1, r)
		}
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestChanged(t *testing.T) {
	st := NewStore()
	ch, idx := st.Changed()
	if idx != 0 || closed(ch) {
		t.Fatalf("fresh store: Changed() = closed %v, index %d", closed(ch), idx)
	}
	if err := st.Apply(1, cmdCreateComponent(webComponent())); err != nil {
		t.Fatal(err)
	}
	if !closed(ch) {
		t.Fatal("Changed channel not closed by Apply")
	}
	ch2, idx := st.Changed()
	if idx != 1 || closed(ch2) {
		t.Fatalf("after apply: Changed() = closed %v, index %d; want open, 1", closed(ch2), idx)
	}
	// A command that fails still moves the index, so watchers wake.
	if err := st.Apply(2, cmdScale("web", 99)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply: %v", err)
	}
	if !closed(ch2) {
		t.Fatal("Changed channel not closed by a failed Apply")
	}
	ch3, _ := st.Changed()
	if err := st.Restore(&statev1.State{Index: 7}); err != nil {
		t.Fatal(err)
	}
	if !closed(ch3) {
		t.Fatal("Changed channel not closed by Restore")
	}
	if _, idx := st.Changed(); idx != 7 {
		t.Errorf("index after restore = %d, want 7", idx)
	}
}

// TestReadsReturnCopies mutates everything the read methods return and checks that the
// store did not change.
func TestReadsReturnCopies(t *testing.T) {
	st := fixture(t)
	before := encodeState(t, st.State())

	s := st.State()
	s.Index = 999
	for _, c := range s.Components {
		c.Name = "changed"
		c.Spec.ScaleMax = 99
		if c.Spec.Env != nil {
			c.Spec.Env["GREETING"] = "changed"
		}
	}
	s.Components = append(s.Components, &statev1.Component{Id: "x"})
	s.Deployments[0].Status = stFailed
	s.Nodes[0].Runtimes[0] = 0
	s.Placements[0].Epoch = 99
	s.Users[0].Name = "mallory"
	s.ApiTokens[0].Sha256[0] ^= 0xff
	s.GithubLinks[0].Secret[0] ^= 0xff
	s.GithubLinks[0].Repo = "evil/repo"

	c, err := st.Component("web")
	if err != nil {
		t.Fatal(err)
	}
	c.Spec.Env["LANG"] = "changed"
	c.Replicas = 77
	c.Source.Branch = "changed"
	for _, c := range st.Components() {
		c.Name = "changed"
		c.CreateTime.Seconds = 1
	}
	c, err = st.ComponentByID("c-api")
	if err != nil {
		t.Fatal(err)
	}
	c.Name, c.Spec.ScaleMax = "changed", 99
	d, err := st.Deployment("d-web-1")
	if err != nil {
		t.Fatal(err)
	}
	d.Status, d.ArtifactDigest = stFailed, "changed"
	n, err := st.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	n.Status = statev1.NodeStatus_NODE_STATUS_DOWN
	for _, n := range st.Nodes() {
		n.ApiAddr = "changed"
	}
	for _, d := range st.Deployments("c-web") {
		d.ArtifactDigest = "changed"
	}
	for _, p := range st.Placements("") {
		p.NodeId = "changed"
	}
	l, err := st.GithubLink("c-web")
	if err != nil {
		t.Fatal(err)
	}
	l.Secret[0] ^= 0xff
	k, err := st.TokenBySHA256(sha(1))
	if err != nil {
		t.Fatal(err)
	}
	k.UserId = "changed"

	if after := encodeState(t, st.State()); !bytes.Equal(before, after) {
		t.Errorf("mutating read results changed the store:\n%s", diffStates(before, after))
	}
	if err := checkInvariants(st); err != nil {
		t.Error(err)
	}
}

func TestReadQueries(t *testing.T) {
	st := fixture(t)
	var names []string
	for _, c := range st.Components() {
		names = append(names, c.Name)
	}
	if len(names) != 2 || names[0] != "api" || names[1] != "web" {
		t.Errorf("Components() names = %v, want [api web] (by name)", names)
	}
	if _, err := st.Component("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Component(nope) = %v", err)
	}
	if c, err := st.ComponentByID("c-web"); err != nil || c.Name != "web" {
		t.Errorf("ComponentByID(c-web) = %v, %v", c, err)
	}
	for _, id := range []string{"web", "nope", ""} {
		if _, err := st.ComponentByID(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("ComponentByID(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if d, err := st.Deployment("d-web-2"); err != nil || d.ComponentId != "c-web" || d.Status != stPending {
		t.Errorf("Deployment(d-web-2) = %v, %v", d, err)
	}
	if _, err := st.Deployment("d-nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Deployment(d-nope) = %v, want ErrNotFound", err)
	}
	if _, err := st.Node("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Node(nope) = %v", err)
	}
	if ns := st.Nodes(); len(ns) != 2 || ns[0].Id != "n1" || ns[1].Id != "n2" {
		t.Errorf("Nodes() = %v", ns)
	}
	var deps []string
	for _, d := range st.Deployments("c-web") {
		deps = append(deps, d.Id)
	}
	if len(deps) != 3 || deps[0] != "d-web-1" || deps[1] != "d-web-2" || deps[2] != "d-web-3" {
		t.Errorf("Deployments(c-web) = %v", deps)
	}
	if ds := st.Deployments("c-nope"); len(ds) != 0 {
		t.Errorf("Deployments(c-nope) = %v", ds)
	}
	if ps := st.Placements("n1"); len(ps) != 2 || ps[0].Id != "p-api-1" || ps[1].Id != "p-web-1" {
		t.Errorf("Placements(n1) = %v", ps)
	}
	if ps := st.Placements(""); len(ps) != 3 {
		t.Errorf("Placements(\"\") = %v", ps)
	}
	if ps := st.Placements("n9"); len(ps) != 0 {
		t.Errorf("Placements(n9) = %v", ps)
	}
	if _, err := st.GithubLink("c-nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GithubLink(c-nope) = %v", err)
	}
	if _, err := st.TokenBySHA256(sha(9)); !errors.Is(err, ErrNotFound) {
		t.Errorf("TokenBySHA256(unknown) = %v", err)
	}
	if _, err := st.TokenBySHA256(nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("TokenBySHA256(nil) = %v", err)
	}
	// State lists are sorted by id.
	s := st.State()
	for i := 1; i < len(s.Components); i++ {
		if s.Components[i-1].Id >= s.Components[i].Id {
			t.Errorf("State().Components not sorted by id")
		}
	}
	for i := 1; i < len(s.Placements); i++ {
		if s.Placements[i-1].Id >= s.Placements[i].Id {
			t.Errorf("State().Placements not sorted by id")
		}
	}
}

func TestRestoreReplacesEverything(t *testing.T) {
	st := fixture(t)
	other := NewStore()
	for i, c := range []*statev1.Command{
		cmdCreateComponent(&statev1.Component{Id: "c-other", Name: "other", Runtime: rtWasm, Spec: wasmSpec()}),
		cmdRegisterNode(testNode("n7")),
	} {
		if err := other.Apply(uint64(i+1), c); err != nil {
			t.Fatal(err)
		}
	}
	snap := other.State()
	snap.Index = 3
	ch, _ := st.Changed()
	if err := st.Restore(snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !closed(ch) {
		t.Error("Restore did not signal a change")
	}
	if st.Index() != 3 {
		t.Errorf("Index() = %d, want 3 from the snapshot", st.Index())
	}
	if !bytes.Equal(encodeState(t, st.State()), encodeState(t, snap)) {
		t.Errorf("restored state differs from the snapshot")
	}
	for _, name := range []string{"web", "api"} {
		if _, err := st.Component(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Component(%s) after restore = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := st.GithubLink("c-web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("link survived restore: %v", err)
	}
	if _, err := st.TokenBySHA256(sha(1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("token survived restore: %v", err)
	}
	getComponent(t, st, "other")
	if err := checkInvariants(st); err != nil {
		t.Error(err)
	}
	// The name index was rebuilt: names of the old state are free, new ones taken.
	if err := st.Apply(4, cmdCreateComponent(webComponent())); err != nil {
		t.Errorf("create web after restore: %v", err)
	}
	if err := st.Apply(5, cmdCreateComponent(newComponent(func(c *statev1.Component) { c.Name = "other" }))); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("create other after restore = %v, want ErrAlreadyExists", err)
	}
	// The store does not share memory with the snapshot it was given.
	snap.Components[0].Name = "mutated"
	if _, err := st.Component("other"); err != nil {
		t.Errorf("mutating the snapshot reached the store: %v", err)
	}
}

func TestRestoreEmpty(t *testing.T) {
	st := fixture(t)
	if err := st.Restore(&statev1.State{}); err != nil {
		t.Fatal(err)
	}
	s := st.State()
	if s.Index != 0 || len(s.Components)+len(s.Deployments)+len(s.Nodes)+len(s.Placements)+len(s.Users)+len(s.ApiTokens)+len(s.GithubLinks) != 0 {
		t.Errorf("state after restoring an empty snapshot = %v", s)
	}
}

func TestRestoreRejectsBadSnapshot(t *testing.T) {
	spec := wasmSpec()
	for _, tc := range []struct {
		name  string
		state *statev1.State
	}{
		{"duplicate component name", &statev1.State{Components: []*statev1.Component{
			{Id: "c1", Name: "web", Runtime: rtWasm, Spec: spec},
			{Id: "c2", Name: "web", Runtime: rtWasm, Spec: spec},
		}}},
		{"component without id", &statev1.State{Components: []*statev1.Component{{Name: "web", Spec: spec}}}},
		{"component without name", &statev1.State{Components: []*statev1.Component{{Id: "c1", Spec: spec}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := fixture(t)
			before := encodeState(t, st.State())
			ch, _ := st.Changed()
			if err := st.Restore(tc.state); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Restore = %v, want ErrInvalid", err)
			}
			if after := encodeState(t, st.State()); !bytes.Equal(before, after) {
				t.Errorf("rejected restore changed the state:\n%s", diffStates(before, after))
			}
			if closed(ch) {
				t.Errorf("rejected restore signalled a change")
			}
		})
	}
}

// TestConcurrentReadsAndApplies runs readers against a writer; run with -race.
func TestConcurrentReadsAndApplies(t *testing.T) {
	st := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 4)
	for r := 0; r < 4; r++ {
		go func() {
			for ctx.Err() == nil {
				ch, _ := st.Changed()
				_ = st.State()
				_ = st.Components()
				_ = st.Placements("n1")
				if _, err := st.Component("web"); err != nil {
					done <- err
					return
				}
				select {
				case <-ch:
				case <-ctx.Done():
				}
			}
			done <- nil
		}()
	}
	for i := uint64(1); i <= 300; i++ {
		if err := st.Apply(fixtureIndex+i, cmdScale("web", uint32(i%4))); err != nil {
			t.Fatal(err)
		}
	}
	if idx, err := st.WaitForIndex(ctx, fixtureIndex+300); err != nil || idx != fixtureIndex+300 {
		t.Fatalf("WaitForIndex = %d, %v", idx, err)
	}
	cancel()
	for r := 0; r < 4; r++ {
		if err := <-done; err != nil {
			t.Errorf("reader: %v", err)
		}
	}
}

// TestApplyResultIsTheWrite: a write's result is the component as that write left it,
// whatever later writes do, and nothing for failed commands, deletes and other entities.
func TestApplyResultIsTheWrite(t *testing.T) {
	st := NewStore()
	c := webComponent()
	res := st.ApplyResult(1, cmdCreateComponent(c))
	if res.Err != nil || res.Index != 1 || res.Component.GetName() != c.Name || res.Component.CreateIndex != 1 {
		t.Fatalf("create result = %+v, want the component created at 1", res)
	}
	spec := wasmSpec()
	spec.Env = map[string]string{"K": "v2"}
	upd := st.ApplyResult(2, cmdUpdateSpec(c.Name, spec))
	if upd.Err != nil || upd.Component.GetSpec().GetEnv()["K"] != "v2" || upd.Component.ModifyIndex != 2 {
		t.Fatalf("update result = %+v, want env K=v2 at 2", upd)
	}
	if del := st.ApplyResult(3, cmdDeleteComponent(c.Name)); del.Err != nil || del.Component != nil {
		t.Fatalf("delete result = %+v, want no component", del)
	}
	// The results are copies: later writes do not reach them.
	if res.Component.GetSpec().GetEnv()["K"] == "v2" {
		t.Fatal("the create's result changed with the later update")
	}
	if r := st.ApplyResult(4, cmdUpdateSpec(c.Name, spec)); !errors.Is(r.Err, ErrNotFound) || r.Component != nil {
		t.Fatalf("update of a deleted component = %+v, want ErrNotFound and no component", r)
	}
	if r := st.ApplyResult(5, cmdScale(c.Name, 1)); r.Err == nil || r.Index != 5 || st.Index() != 5 {
		t.Fatalf("failed command result = %+v, index %d; want an error and index 5", r, st.Index())
	}
	if r := st.ApplyResult(6, cmdRegisterNode(testNode("n1"))); r.Err != nil || r.Component != nil {
		t.Fatalf("register node result = %+v, want no component", r)
	}
}
