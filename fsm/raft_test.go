package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protowire"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// applyLog feeds data to f as the raft log entry at index and returns its *Result.
func applyLog(t testing.TB, f *FSM, index uint64, data []byte) *Result {
	t.Helper()
	resp := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
	res, ok := resp.(*Result)
	if !ok || res == nil {
		t.Fatalf("Apply(%x) returned %T %v, want *Result", data, resp, resp)
	}
	if res.Index != index {
		t.Fatalf("Apply(%x): result index %d, want %d", data, res.Index, index)
	}
	return res
}

func mustEncode(t testing.TB, c *statev1.Command) []byte {
	t.Helper()
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureFSM is an FSM whose store holds the fixture, applied through raft log entries.
func fixtureFSM(t testing.TB) *FSM {
	t.Helper()
	f := New()
	for i, c := range fixtureCommands() {
		idx := uint64(i + 1)
		c.Time = at(idx)
		if res := applyLog(t, f, idx, mustEncode(t, c)); res.Err != nil {
			t.Fatalf("fixture command %d: %v", idx, res.Err)
		}
	}
	return f
}

func TestFSMApplyGarbage(t *testing.T) {
	badUTF8 := protowire.AppendTag(nil, 1, protowire.BytesType)
	badUTF8 = protowire.AppendString(badUTF8, "\xff\xfe")
	badUTF8 = protowire.AppendBytes(protowire.AppendTag(nil, 14, protowire.BytesType), badUTF8)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"unterminated varint", []byte{0xff}},
		{"field number zero", []byte{0x00}},
		{"truncated length", []byte{0x52, 0x05, 0x01}},
		{"bad group", []byte{0x0b}},
		{"text", []byte("hello, raft")},
		{"invalid utf-8 in a string", badUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeCommand(tc.data); !errors.Is(err, ErrDecode) {
				t.Fatalf("DecodeCommand = %v, want ErrDecode", err)
			}
			f := fixtureFSM(t)
			before := stateBytes(t, f.Store)
			res := applyLog(t, f, 40, tc.data)
			if !errors.Is(res.Err, ErrDecode) {
				t.Errorf("result error = %v, want ErrDecode", res.Err)
			}
			if got := f.Store.Index(); got != 40 {
				t.Errorf("Store.Index() = %d, want 40: a bad entry must still advance the index", got)
			}
			if after := stateBytes(t, f.Store); !bytes.Equal(before, after) {
				t.Errorf("bad entry changed the state:\n%s", diffStates(before, after))
			}
		})
	}
}

func TestFSMApplyResult(t *testing.T) {
	f := fixtureFSM(t)
	if res := applyLog(t, f, 20, mustEncode(t, cmdScale("web", 2))); res.Err != nil {
		t.Errorf("valid command: %v", res.Err)
	}
	if res := applyLog(t, f, 21, mustEncode(t, cmdScale("web", 9))); !errors.Is(res.Err, ErrInvalid) {
		t.Errorf("invalid command: %v, want ErrInvalid", res.Err)
	}
	if res := applyLog(t, f, 22, nil); !errors.Is(res.Err, ErrUnknownCommand) {
		t.Errorf("empty entry: %v, want ErrUnknownCommand", res.Err)
	}
	if f.Store.Index() != 22 {
		t.Errorf("Index() = %d, want 22", f.Store.Index())
	}
	c := getComponent(t, f.Store, "web")
	if c.Replicas != 2 || c.ModifyIndex != 20 {
		t.Errorf("component = %v", c)
	}
	if c.UpdateTime != nil {
		t.Errorf("update time = %v, want none: the command carried no time", c.UpdateTime)
	}
}

// TestFSMAnswerWhile: while the FSM is told nobody reads its results (a follower), a write
// applies all the same but its result carries no component; while it answers, the result
// holds the component as the write left it, a copy the state does not share.
func TestFSMAnswerWhile(t *testing.T) {
	f := fixtureFSM(t)
	leading := false
	f.AnswerWhile(func() bool { return leading })
	if res := applyLog(t, f, 20, mustEncode(t, cmdScale("web", 2))); res.Err != nil || res.Component != nil {
		t.Fatalf("follower's result = %v, want applied without a component", res)
	}
	if c := getComponent(t, f.Store, "web"); c.Replicas != 2 {
		t.Fatalf("the follower's write did not apply: %v", c)
	}
	leading = true
	res := applyLog(t, f, 21, mustEncode(t, cmdScale("web", 3)))
	if res.Err != nil || res.Component.GetReplicas() != 3 || res.Component.ModifyIndex != 21 {
		t.Fatalf("leader's result = %v, want the component at index 21", res)
	}
	res.Component.Replicas = 99
	if c := getComponent(t, f.Store, "web"); c.Replicas != 3 {
		t.Fatalf("the result shares memory with the state: %v", c)
	}
}

// TestStoreKeepsNoPartOfCallersCommand: a command handed to the Store (not decoded by the
// FSM) stays the caller's: changing it after it applied changes nothing in the state. The
// FSM's own decoded commands are kept as they are (Store.applyBatch owned).
func TestStoreKeepsNoPartOfCallersCommand(t *testing.T) {
	for _, batch := range []bool{false, true} {
		st := NewStore()
		cmd := cmdCreateComponent(webComponent())
		cmd.Time, cmd.Actor = at(1), "user:a"
		var err error
		if batch {
			err = st.ApplyBatch([]Entry{{Index: 1, Cmd: cmd}})[0].Err
		} else {
			err = st.Apply(1, cmd)
		}
		if err != nil {
			t.Fatal(err)
		}
		before := stateBytes(t, st)
		c := cmd.GetCreateComponent().GetComponent()
		c.Replicas, c.Spec.ScaleMax = 42, 43
		cmd.Time.Seconds = 999
		if after := stateBytes(t, st); !bytes.Equal(before, after) {
			t.Errorf("batch=%v: changing the caller's command changed the state:\n%s", batch, diffStates(before, after))
		}
	}
}

type trackedReader struct {
	io.Reader
	closed bool
}

func (r *trackedReader) Close() error { r.closed = true; return nil }

func TestSnapshotPersistRestore(t *testing.T) {
	f := fixtureFSM(t)
	want := encodeState(t, f.Store.State())

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	// Changes after Snapshot returns are not part of it: Persist may run concurrently with
	// later applies.
	if res := applyLog(t, f, 30, mustEncode(t, cmdDeleteComponent("web"))); res.Err != nil {
		t.Fatal(res.Err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.canceled {
		t.Errorf("sink closed=%v canceled=%v, want closed only", sink.closed, sink.canceled)
	}
	if !bytes.Equal(sink.Bytes(), want) {
		t.Fatalf("persisted bytes differ from the state at Snapshot time")
	}

	g := New()
	if err := g.Store.Apply(1, cmdCreateComponent(newComponent(nil))); err != nil {
		t.Fatal(err)
	}
	r := &trackedReader{Reader: bytes.NewReader(sink.Bytes())}
	if err := g.Restore(r); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !r.closed {
		t.Errorf("Restore did not close its reader")
	}
	if got := encodeState(t, g.Store.State()); !bytes.Equal(got, want) {
		t.Errorf("restored state differs:\n%s", diffStates(want, got))
	}
	if g.Store.Index() != fixtureIndex {
		t.Errorf("restored index = %d, want %d", g.Store.Index(), fixtureIndex)
	}
	if err := checkInvariants(g.Store); err != nil {
		t.Error(err)
	}
	// Both replicas go on in step.
	h := fixtureFSM(t)
	for i, c := range []*statev1.Command{cmdScale("web", 3), cmdDeleteComponent("api"), cmdCreateComponent(newComponent(nil))} {
		b := mustEncode(t, c)
		rg, rh := applyLog(t, g, uint64(20+i), b), applyLog(t, h, uint64(20+i), b)
		if errClass(rg.Err) != errClass(rh.Err) {
			t.Errorf("command %d: restored replica %v, other %v", i, rg.Err, rh.Err)
		}
	}
	if a, b := encodeState(t, g.Store.State()), encodeState(t, h.Store.State()); !bytes.Equal(a, b) {
		t.Errorf("restored replica diverged:\n%s", diffStates(b, a))
	}
}

func TestPersistWriteError(t *testing.T) {
	f := fixtureFSM(t)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	sink := &memSink{writeErr: boom}
	if err := snap.Persist(sink); !errors.Is(err, boom) {
		t.Errorf("Persist = %v, want it to wrap %v", err, boom)
	}
	if !sink.canceled || sink.closed {
		t.Errorf("sink closed=%v canceled=%v, want canceled only", sink.closed, sink.canceled)
	}
}

func TestRestoreGarbageKeepsState(t *testing.T) {
	f := fixtureFSM(t)
	before := encodeState(t, f.Store.State())
	for _, data := range [][]byte{{0xff}, []byte("not a snapshot"), {0x12, 0x7f}} {
		r := &trackedReader{Reader: bytes.NewReader(data)}
		if err := f.Restore(r); err == nil {
			t.Errorf("Restore(%x) succeeded", data)
		}
		if !r.closed {
			t.Errorf("Restore(%x) did not close its reader", data)
		}
	}
	if after := encodeState(t, f.Store.State()); !bytes.Equal(before, after) {
		t.Errorf("failed restore changed the state:\n%s", diffStates(before, after))
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("io error") }
func (failingReader) Close() error             { return nil }

func TestRestoreReadError(t *testing.T) {
	if err := New().Restore(failingReader{}); err == nil {
		t.Error("Restore from a failing reader succeeded")
	}
}

// randomEntries is a seeded sequence of raft log payloads: mostly commands drawn by
// genCommand from small pools, so that many conflict or fail, and a few undecodable entries.
func randomEntries(t testing.TB, seed int64, n int) [][]byte {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	ch := randChooser{r}
	out := make([][]byte, n)
	for i := range out {
		if r.Intn(50) == 0 {
			junk := make([]byte, 1+r.Intn(8))
			r.Read(junk)
			out[i] = junk
			continue
		}
		cmd := genCommand(ch)
		cmd.Time = at(uint64(i + 1))
		out[i] = mustEncode(t, cmd)
	}
	return out
}

// opName names the op of an entry, for coverage counts.
func opName(data []byte) string {
	cmd, err := DecodeCommand(data)
	if err != nil {
		return "undecodable"
	}
	if cmd.GetOp() == nil {
		return "none"
	}
	return fmt.Sprintf("%T", cmd.GetOp())
}

// TestDeterminism applies one random sequence to two fresh FSMs (and to a third that joins
// half way through from a snapshot of the first) and requires identical outcomes and states.
func TestDeterminism(t *testing.T) {
	const n = 2000
	entries := randomEntries(t, 20250301, n)
	a, b := New(), New()
	var c *FSM
	okByOp, errByOp := map[string]int{}, map[string]int{}
	for i, data := range entries {
		idx := uint64(i + 1)
		ra, rb := applyLog(t, a, idx, data), applyLog(t, b, idx, data)
		if errClass(ra.Err) != errClass(rb.Err) {
			t.Fatalf("entry %d (%s): outcomes differ: %v vs %v", idx, opName(data), ra.Err, rb.Err)
		}
		if ra.Err == nil {
			okByOp[opName(data)]++
		} else {
			errByOp[opName(data)]++
		}
		if err := checkInvariants(a.Store); err != nil {
			t.Fatalf("after entry %d (%s): %v", idx, opName(data), err)
		}
		if c != nil {
			if rc := applyLog(t, c, idx, data); errClass(rc.Err) != errClass(ra.Err) {
				t.Fatalf("entry %d: restored replica %v, others %v", idx, rc.Err, ra.Err)
			}
		}
		if i == n/2 {
			snap, err := a.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			sink := &memSink{}
			if err := snap.Persist(sink); err != nil {
				t.Fatal(err)
			}
			c = New()
			if err := c.Restore(io.NopCloser(&sink.Buffer)); err != nil {
				t.Fatal(err)
			}
		}
	}
	sa, sb, sc := encodeState(t, a.Store.State()), encodeState(t, b.Store.State()), encodeState(t, c.Store.State())
	if !bytes.Equal(sa, sb) {
		t.Fatalf("replicas diverged:\n%s", diffStates(sa, sb))
	}
	if !bytes.Equal(sa, sc) {
		t.Fatalf("replica restored half way diverged:\n%s", diffStates(sa, sc))
	}
	if a.Store.Index() != n {
		t.Errorf("Index() = %d, want %d", a.Store.Index(), n)
	}

	// The sequence must exercise both outcomes of every op, or it proves little.
	ok, bad := 0, 0
	for op, k := range okByOp {
		ok += k
		t.Logf("%-40s ok %4d  failed %4d", op, k, errByOp[op])
	}
	for _, k := range errByOp {
		bad += k
	}
	if ok < n/10 || bad < n/10 {
		t.Errorf("%d commands succeeded and %d failed; the generator should mix both", ok, bad)
	}
	for i := 0; i < numOps-1; i++ {
		op := opName(mustEncode(t, genOp(&byteChooser{}, i)))
		if okByOp[op] == 0 {
			t.Errorf("%s never succeeded", op)
		}
		if errByOp[op] == 0 {
			t.Errorf("%s never failed", op)
		}
	}
	s := a.Store.State()
	t.Logf("final state: %d components, %d deployments, %d nodes, %d placements, %d users, %d tokens, %d links",
		len(s.Components), len(s.Deployments), len(s.Nodes), len(s.Placements), len(s.Users), len(s.ApiTokens), len(s.GithubLinks))
}

func TestEncodeSnapshotStable(t *testing.T) {
	st := fixture(t)
	env := map[string]string{}
	for i := 0; i < 64; i++ {
		env[fmt.Sprintf("KEY_%02d", i)] = fmt.Sprint(i)
	}
	if err := st.Apply(50, cmdUpdateSpec("web", withSpec(func(s *statev1.ComponentSpec) { s.Env = env }))); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(51, cmdUpdateSpec("api", &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 2, Env: env})); err != nil {
		t.Fatal(err)
	}
	s := st.State()
	first := encodeState(t, s)
	for i := 0; i < 5; i++ {
		if b := encodeState(t, s); !bytes.Equal(b, first) {
			t.Fatalf("EncodeSnapshot call %d differs from the first", i+2)
		}
		if b := encodeState(t, st.State()); !bytes.Equal(b, first) {
			t.Fatalf("EncodeSnapshot of State() call %d differs from the first", i+2)
		}
	}
	decoded, err := DecodeSnapshot(first)
	if err != nil {
		t.Fatal(err)
	}
	if b := encodeState(t, decoded); !bytes.Equal(b, first) {
		t.Errorf("decode and re-encode changed the bytes")
	}
}

func TestDecodeSnapshotGarbage(t *testing.T) {
	if _, err := DecodeSnapshot([]byte{0xff}); err == nil {
		t.Error("DecodeSnapshot of garbage succeeded")
	}
	s, err := DecodeSnapshot(nil)
	if err != nil || s.GetIndex() != 0 || len(s.GetComponents()) != 0 {
		t.Errorf("DecodeSnapshot(nil) = %v, %v; want an empty state", s, err)
	}
}
