package fsm

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/hashicorp/raft"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// checkRoundTrip requires that the state of f survives EncodeSnapshot, DecodeSnapshot and
// Restore, and Snapshot, Persist and FSM.Restore, byte for byte.
func checkRoundTrip(t *testing.T, f *FSM) {
	t.Helper()
	want := encodeState(t, f.Store.State())
	s, err := DecodeSnapshot(want)
	if err != nil {
		t.Fatalf("DecodeSnapshot: %v", err)
	}
	g := New()
	if err := g.Store.Restore(s); err != nil {
		t.Fatalf("Store.Restore of our own snapshot: %v", err)
	}
	if got := encodeState(t, g.Store.State()); !bytes.Equal(got, want) {
		t.Fatalf("Store.Restore round trip differs:\n%s", diffStates(want, got))
	}
	if err := checkInvariants(g.Store); err != nil {
		t.Fatalf("after restore: %v", err)
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	snap.Release()
	h := New()
	if err := h.Restore(&trackedReader{Reader: &sink.Buffer}); err != nil {
		t.Fatalf("FSM.Restore of our own snapshot: %v", err)
	}
	if got := encodeState(t, h.Store.State()); !bytes.Equal(got, want) {
		t.Fatalf("Persist/Restore round trip differs:\n%s", diffStates(want, got))
	}
}

// FuzzApplyBytes feeds arbitrary bytes to FSM.Apply as a raft log entry, on top of the
// fixture: plain entries and batch entries (EncodeBatch). Apply must not panic, must return
// a *Result (a []*Result for a batch), advance the index, leave the state untouched when
// it fails (every command of a batch failed), keep the invariants, and the state must still round-trip through
// a snapshot.
func FuzzApplyBytes(f *testing.F) {
	seeds := fixtureCommands()
	seeds = append(seeds,
		cmdCreateComponent(newComponent(nil)),
		cmdUpdateSpec("web", withSpec(func(s *statev1.ComponentSpec) { s.ScaleMin, s.ScaleMax = 2, 4 })),
		cmdSetDesired("web", statev1.DesiredState_DESIRED_STATE_PAUSED),
		cmdScale("web", 3),
		cmdDeleteComponent("web"),
		cmdSetNodeStatus("n1", statev1.NodeStatus_NODE_STATUS_DRAINING),
		cmdRemoveNode("n1"),
		cmdSetDeploymentStatus("d-web-2", statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING, "", ""),
		cmdSetDeploymentStatus("d-web-1", stFailed, "", "crash"),
		cmdActivate("c-api", "d-api-1"),
		cmdPutPlacements(mkPlacement("p-web-1", "c-web", "d-web-1", "n1", 2)),
		cmdSetObserved("p-web-1", statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING, "ok"),
		cmdDeletePlacements("p-web-1"),
		cmdDeleteToken("k1"),
		cmdDeleteLink("c-web"),
		&statev1.Command{IgnoreIfUnknown: true},
	)
	for i, c := range seeds {
		c.Time = at(uint64(i))
		f.Add(mustEncode(f, c))
	}
	f.Add(futureCommand(f, true))
	f.Add(futureCommand(f, false))
	f.Add([]byte{})
	f.Add([]byte{0xff})
	f.Add(EncodeBatch([][]byte{mustEncode(f, seeds[len(seeds)-2]), {0xff}, mustEncode(f, cmdScale("web", 3))}))

	base := encodeState(f, fixture(f).State())
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := New()
		if err := fs.Restore(&trackedReader{Reader: bytes.NewReader(base)}); err != nil {
			t.Fatal(err)
		}
		before := stateBytes(t, fs.Store)
		var results []*Result // one, or one per command of a batch entry
		switch r := fs.Apply(&raft.Log{Index: 1000, Term: 1, Type: raft.LogCommand, Data: data}).(type) {
		case *Result:
			results = []*Result{r}
		case []*Result:
			results = r
		default:
			t.Fatalf("Apply(%x) returned %T", data, r)
		}
		if fs.Store.Index() != 1000 {
			t.Fatalf("Index() = %d, want 1000", fs.Store.Index())
		}
		failed := true
		for _, res := range results {
			if res == nil || res.Index != 1000 {
				t.Fatalf("Apply(%x): result %+v, want one at index 1000", data, res)
			}
			failed = failed && res.Err != nil
		}
		if failed {
			if after := stateBytes(t, fs.Store); !bytes.Equal(before, after) {
				t.Fatalf("failed entry (%v) changed the state:\n%s", results[0].Err, diffStates(before, after))
			}
		}
		if err := checkInvariants(fs.Store); err != nil {
			t.Fatalf("entry %x (results %v): %v", data, results, err)
		}
		checkRoundTrip(t, fs)
	})
}

// maxProgram bounds the bytes of a FuzzApplySequence input that are read (about 40
// commands). The fuzzer minimizes each new input with a number of runs that grows with the
// square of its length; a longer program would spend the fuzzing time minimizing.
const maxProgram = 256

// FuzzApplySequence reads its input as a program: each byte is one choice of genCommand
// (which op, which id from a small pool, which number), so that the fuzzer composes
// sequences of valid-but-wrong commands. Every command is applied through FSM.Apply and
// through Store.Apply on a second replica; after each one the invariants must hold, a
// failed command must change nothing, View.TouchedSince must name every component it touched, and at the end both replicas must agree and the
// state must round-trip through a snapshot.
func FuzzApplySequence(f *testing.F) {
	for seed := int64(1); seed <= 8; seed++ {
		rc := &recordingChooser{r: rand.New(rand.NewSource(seed))}
		for len(rc.out) < maxProgram-16 {
			genCommand(rc)
		}
		f.Add(rc.out)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})

	f.Fuzz(func(t *testing.T, prog []byte) {
		fs, other := New(), NewStore()
		ch := &byteChooser{b: prog[:min(len(prog), maxProgram)]}
		for i := uint64(1); !ch.done(); i++ {
			cmd := genCommand(ch)
			cmd.Time = at(i)
			data := mustEncode(t, cmd)
			before := stateBytes(t, fs.Store)
			beforeTables := tableBytes(t, other)
			beforeRows := touchedRows(t, other)
			res := applyLog(t, fs, i, data)
			otherErr := other.Apply(i, cmd)
			checkTables(t, other, beforeTables, cmd, i, otherErr)
			checkTouched(t, other, beforeRows, cmd, i)
			if errClass(res.Err) != errClass(otherErr) {
				t.Fatalf("command %d (%v): FSM.Apply %v, Store.Apply %v", i, cmd, res.Err, otherErr)
			}
			if res.Err != nil {
				if after := stateBytes(t, fs.Store); !bytes.Equal(before, after) {
					t.Fatalf("failed command %d (%v: %v) changed the state:\n%s", i, cmd, res.Err, diffStates(before, after))
				}
			}
			if err := checkInvariants(fs.Store); err != nil {
				t.Fatalf("after command %d (%v, result %v): %v", i, cmd, res.Err, err)
			}
		}
		if a, b := encodeState(t, fs.Store.State()), encodeState(t, other.State()); !bytes.Equal(a, b) {
			t.Fatalf("replicas diverged:\n%s", diffStates(a, b))
		}
		checkRoundTrip(t, fs)
	})
}
