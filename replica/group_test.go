package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// countingFSM is the real FSM, counting the command entries it applies.
type countingFSM struct {
	*fsm.FSM
	mu      sync.Mutex
	entries int
	gate    chan struct{} // when set, applies wait for it to close
}

func (c *countingFSM) hold() { c.mu.Lock(); c.gate = make(chan struct{}); c.mu.Unlock() }

func (c *countingFSM) release() { c.mu.Lock(); close(c.gate); c.gate = nil; c.mu.Unlock() }

func (c *countingFSM) wait() {
	c.mu.Lock()
	g := c.gate
	c.mu.Unlock()
	if g != nil {
		<-g
	}
}

func (c *countingFSM) Apply(l *raft.Log) any {
	c.mu.Lock()
	c.entries++
	c.mu.Unlock()
	c.wait()
	return c.FSM.Apply(l)
}

func (c *countingFSM) ApplyBatch(logs []*raft.Log) []any {
	c.mu.Lock()
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			c.entries++
		}
	}
	c.mu.Unlock()
	c.wait()
	return c.FSM.ApplyBatch(logs)
}

func (c *countingFSM) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries
}

// singleReplica is a one-voter hashicorp/raft cluster in memory over the real FSM.
func singleReplica(t *testing.T) (*Replica, *countingFSM) {
	t.Helper()
	f := &countingFSM{FSM: fsm.New()}
	cfg := raft.DefaultConfig()
	cfg.LocalID = "r1"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	cfg.LogOutput = io.Discard
	addr, trans := raft.NewInmemTransport("")
	store := raft.NewInmemStore()
	r, err := raft.NewRaft(cfg, f, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown().Error() })
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: cfg.LocalID, Address: addr}}}).Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.LeaderCh():
	case <-time.After(30 * time.Second):
		t.Fatal("no leader")
	}
	return &Replica{Raft: r, Store: f.Store}, f
}

func createCmd(name string, scaleMax uint32) *statev1.Command {
	return &statev1.Command{Actor: "test", Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Name: name, Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: scaleMax},
	}}}}
}

func updateCmd(name string, scaleMax uint32) *statev1.Command {
	return &statev1.Command{Actor: "test", Op: &statev1.Command_UpdateComponentSpec{UpdateComponentSpec: &statev1.UpdateComponentSpec{
		Name: name, Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: scaleMax},
	}}}
}

// TestGroupCommitAnswersEachWrite queues many writes behind one in flight: creates of
// distinct names, creates that collide pairwise, and spec updates of one component. The
// writes must share entries (one per round of the queue), yet each must get what it would
// alone: one create of each colliding pair succeeds and the other gets AlreadyExists, and
// every update succeeds with its own spec at an index of its own (two writes of one
// component never share an entry, whose index they would share).
func TestGroupCommitAnswersEachWrite(t *testing.T) {
	r, f := singleReplica(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := r.ApplyResult(ctx, createCmd("shared", 100)); err != nil {
		t.Fatal(err)
	}
	entriesBefore := f.count()

	const distinct, pairs, updates = 40, 10, 20
	type outcome struct {
		name string
		res  *fsm.Result
		err  error
	}
	var cmds []*statev1.Command
	for i := range distinct {
		cmds = append(cmds, createCmd(fmt.Sprintf("d-%d", i), 3))
	}
	for i := range pairs {
		cmds = append(cmds, createCmd(fmt.Sprintf("p-%d", i), 3), createCmd(fmt.Sprintf("p-%d", i), 4))
	}
	for i := range updates {
		cmds = append(cmds, updateCmd("shared", uint32(10+i)))
	}
	// As many writes in flight as the group allows, held in the FSM, while all the others
	// queue behind them.
	f.hold()
	first := make(chan error, maxInFlight)
	for i := range maxInFlight {
		go func() {
			_, err := r.ApplyResult(ctx, createCmd(fmt.Sprintf("first-%d", i), 3))
			first <- err
		}()
	}
	waitFor(t, func() bool { r.group.mu.Lock(); defer r.group.mu.Unlock(); return r.group.inflight == maxInFlight })
	out := make([]outcome, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.ApplyResult(ctx, cmd)
			out[i] = outcome{cmd.GetCreateComponent().GetComponent().GetName(), res, err}
		}()
	}
	waitFor(t, func() bool { r.group.mu.Lock(); defer r.group.mu.Unlock(); return len(r.group.queue) == len(cmds) })
	f.release()
	wg.Wait()
	for range maxInFlight {
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	}

	// The first entries, then one per round of the queue: the updates of one component
	// take a round each, everything else fits in the first two.
	if n, want := f.count()-entriesBefore, maxInFlight+updates; n != want {
		t.Fatalf("%d writes took %d entries, want %d", len(cmds)+maxInFlight, n, want)
	}
	for i := range distinct {
		if o := out[i]; o.err != nil || o.res.Component.GetName() != o.name || o.res.Component.GetId() == "" {
			t.Fatalf("create %s: %+v, %v", o.name, o.res, o.err)
		}
	}
	for i := range pairs {
		a, b := out[distinct+2*i], out[distinct+2*i+1]
		if (a.err == nil) == (b.err == nil) {
			t.Fatalf("creates of %s: %v and %v; want one success and one AlreadyExists", a.name, a.err, b.err)
		}
		won, lost := a, b
		if a.err != nil {
			won, lost = b, a
		}
		if !errors.Is(lost.err, fsm.ErrAlreadyExists) {
			t.Fatalf("losing create of %s: %v, want AlreadyExists", lost.name, lost.err)
		}
		c, err := r.Store.Component(won.name)
		if err != nil || c.Id != won.res.Component.Id || c.Spec.ScaleMax != won.res.Component.Spec.ScaleMax {
			t.Fatalf("%s holds %v (%v); the winning write got %v", won.name, c, err, won.res.Component)
		}
	}
	modified := map[uint64]bool{}
	for i := range updates {
		o := out[distinct+2*pairs+i]
		if o.err != nil {
			t.Fatalf("update %d: %v", i, o.err)
		}
		if got := o.res.Component.GetSpec().GetScaleMax(); got != uint32(10+i) {
			t.Fatalf("update %d answered the component with scale max %d: not as it stood right after it", i, got)
		}
		if modified[o.res.Component.ModifyIndex] {
			t.Fatalf("two updates of one component at index %d: they shared an entry", o.res.Component.ModifyIndex)
		}
		modified[o.res.Component.ModifyIndex] = true
	}
}

// TestGroupCommitAnswersBeforeSendingNext: when an entry commits, its writers are answered
// before the batch queued behind it is handed to Raft, which may wait (Raft's apply channel
// has no buffer; its leader loop takes it between log writes): a committed write is never
// held by the next one's hand-over. The queued batch is still sent by the same goroutine and
// committed, and its first writer's goroutine then answers it.
func TestGroupCommitAnswersBeforeSendingNext(t *testing.T) {
	r, _ := singleReplica(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	propose := func(name string) *proposal {
		cmd := createCmd(name, 3)
		stamp(cmd)
		b, err := fsm.EncodeCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := fsm.BatchKey(cmd)
		return &proposal{ctx: ctx, key: key, data: b, done: make(chan struct{})}
	}
	committed := []*proposal{propose("c-0"), propose("c-1"), propose("c-2")}
	queued := []*proposal{propose("q-0"), propose("q-1")}
	g := &r.group
	g.mu.Lock()
	g.inflight = 1
	g.mu.Unlock()
	e := r.send(committed)
	if err := e.fut.Error(); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.queue = append(g.queue, queued...)
	g.mu.Unlock()
	handOver, sent := make(chan struct{}), make(chan struct{})
	r.onSend = func() { close(sent); <-handOver } // Raft's leader loop busy
	finished := make(chan struct{})
	go func() { defer close(finished); r.finish(e) }()
	<-sent
	deadline := time.After(10 * time.Second)
	for _, p := range committed[1:] {
		select {
		case <-p.done:
			if p.err != nil || p.res == nil {
				t.Errorf("committed write answered with %v, %v", p.res, p.err)
			}
		case <-deadline:
			t.Fatal("the committed entry's writers wait for the next entry's hand-over to Raft")
		}
	}
	close(handOver)
	<-finished
	<-queued[0].done
	if queued[0].lead == nil {
		t.Fatal("the queued batch was not handed to its first writer's goroutine")
	}
	r.finish(queued[0].lead)
	for _, p := range queued {
		if p.err != nil || p.res == nil || p.res.Component.GetName() != strings.TrimPrefix(p.key, "component/") {
			t.Errorf("queued write: %v, %v (key %s)", p.res, p.err, p.key)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight != 0 || len(g.queue) != 0 {
		t.Errorf("after both entries: %d in flight, %d queued", g.inflight, len(g.queue))
	}
}

// TestGroupCommitIdleWriteAlone: a write that finds nothing in flight is committed at
// once as a plain entry of its own, and one whose caller has given up is not sent.
func TestGroupCommitIdleWriteAlone(t *testing.T) {
	r, f := singleReplica(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		before := f.count()
		res, err := r.ApplyResult(ctx, createCmd(fmt.Sprintf("idle-%d", i), 3))
		if err != nil {
			t.Fatal(err)
		}
		// The FSM's index, not Raft's AppliedIndex: Raft sets that after it hands the entry
		// to the FSM, which may answer first.
		if f.count() != before+1 || r.Store.Index() != res.Index {
			t.Fatalf("write %d: %d entries applied, result index %d, applied index %d", i, f.count()-before, res.Index, r.Store.Index())
		}
	}
	done, stop := context.WithCancel(ctx)
	stop()
	before := r.Raft.LastIndex()
	if _, err := r.applyGrouped(done, "component/x", nil); err == nil || r.Raft.LastIndex() != before {
		t.Fatalf("a write whose caller gave up: %v, last index %d → %d", err, before, r.Raft.LastIndex())
	}
	if _, err := r.ApplyResult(ctx, createCmd("after", 3)); err != nil {
		t.Fatalf("the group is stuck after a dropped write: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReplicaWaiting: Waiting holds from the moment a write is handed to Raft until its
// future answers, through the group and alone, so that an FSM answering while it holds
// (fsm.FSM.AnswerWhile) fills every result a writer of this node waits for, whatever Raft's
// role meanwhile; it is false once nothing is awaited.
func TestReplicaWaiting(t *testing.T) {
	r, f := singleReplica(t)
	f.FSM.AnswerWhile(r.Waiting)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r.Waiting() {
		t.Fatal("waiting before any write")
	}
	grouped := createCmd("waited", 3)
	alone := &statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{
		Node: &statev1.Node{Id: "n9", ApiAddr: "10.0.0.9:1", ProxyAddr: "10.0.0.9:2", RaftAddr: "10.0.0.9:3"}}}}
	if _, ok := fsm.BatchKey(alone); ok {
		t.Fatal("the test wants a command that goes alone")
	}
	for _, cmd := range []*statev1.Command{grouped, alone} {
		f.hold()
		res := make(chan *fsm.Result, 1)
		go func() {
			r, err := r.ApplyResult(ctx, cmd)
			if err != nil {
				t.Error(err)
			}
			res <- r
		}()
		waitFor(t, r.Waiting)
		f.release()
		got := <-res
		if cmd == grouped && (got == nil || got.Component.GetName() != "waited") {
			t.Errorf("the grouped write's result has no component: %v", got)
		}
		if r.Waiting() {
			t.Errorf("still waiting after the write was answered")
		}
	}
}
