package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestApplyBatchMatchesApply applies random command histories entry by entry through
// FSM.Apply on one replica and in random batches through FSM.ApplyBatch on another (with
// configuration entries and undecodable bytes mixed in): every entry must get the same
// result, and after every batch both replicas must hold the same state and table indexes.
// Each entry applied alone must also be named by View.TouchedSince (checkTouched).
func TestApplyBatchMatchesApply(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewSource(seed))
		one, batched := New(), New()
		var idx uint64
		for idx < 200 {
			n := 1 + r.Intn(12)
			var logs []*raft.Log
			for range n {
				idx++
				l := &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand}
				switch r.Intn(20) {
				case 0:
					l.Type, l.Data = raft.LogConfiguration, []byte("configuration")
				case 1:
					l.Data = []byte{0xff, 0x01}
				default:
					cmd := genCommand(randChooser{r})
					cmd.Time = at(idx)
					l.Data = mustEncode(t, cmd)
				}
				logs = append(logs, l)
			}
			got := batched.ApplyBatch(logs)
			if len(got) != len(logs) {
				t.Fatalf("seed %d: ApplyBatch answered %d of %d entries", seed, len(got), len(logs))
			}
			for i, l := range logs {
				if l.Type != raft.LogCommand {
					if got[i] != nil {
						t.Fatalf("seed %d entry %d: a configuration entry got %v", seed, l.Index, got[i])
					}
					continue
				}
				before := touchedRows(t, one.Store)
				want := applyLog(t, one, l.Index, l.Data)
				if cmd, err := DecodeCommand(l.Data); err == nil {
					checkTouched(t, one.Store, before, cmd, l.Index)
				}
				res, ok := got[i].(*Result)
				if !ok || res.Index != want.Index || errClass(res.Err) != errClass(want.Err) ||
					!proto.Equal(res.Component, want.Component) {
					t.Fatalf("seed %d entry %d: ApplyBatch gave %+v, Apply %+v", seed, l.Index, got[i], want)
				}
			}
			checkSameStores(t, seed, one.Store, batched.Store)
		}
		if err := checkInvariants(batched.Store); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// touchedSet is a store's log of touched components as a set per index, and its floor (the
// order within one index follows map iteration for some commands).
func touchedSet(st *Store) map[uint64]map[string]bool {
	out := map[uint64]map[string]bool{0: {fmt.Sprint(st.s.touched.floor): true}}
	for _, tc := range st.s.touched.log {
		if out[tc.index] == nil {
			out[tc.index] = map[string]bool{}
		}
		out[tc.index][tc.componentID] = true
	}
	return out
}

// checkSameStores requires that two replicas hold the same state, table indexes and index.
func checkSameStores(t *testing.T, seed int64, one, batched *Store) {
	t.Helper()
	idx := one.Index()
	if a, b := stateBytes(t, one), stateBytes(t, batched); !bytes.Equal(a, b) {
		t.Fatalf("seed %d at %d: replicas diverged:\n%s", seed, idx, diffStates(a, b))
	}
	for tb := range numTables {
		if a, b := one.TableIndex(tb), batched.TableIndex(tb); a != b {
			t.Fatalf("seed %d at %d: table %s index %d one by one, %d batched", seed, idx, tb, a, b)
		}
	}
	if idx != batched.Index() {
		t.Fatalf("seed %d: index %d one by one, %d batched", seed, idx, batched.Index())
	}
}

// waiting is how many blocking queries wait now .
func (st *Store) waiting() int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.waiters)
}

// TestApplyBatchWakesOnce checks that a batch wakes each watcher once, at its end, with
// the indexes of the whole batch: a blocking query on the components table returns the
// index of the batch's last component write, and a WaitForIndex inside the batch returns.
func TestApplyBatchWakesOnce(t *testing.T) {
	f := New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var logs []*raft.Log
	for i, name := range []string{"a", "b", "c"} {
		c := webComponent()
		c.Id, c.Name = "c-"+name, name
		cmd := cmdCreateComponent(c)
		cmd.Time = at(uint64(i + 1))
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: mustEncode(t, cmd)})
	}
	changed, _ := f.Store.Changed()
	before := f.Store.Wakeups()
	comps := make(chan uint64, 1)
	go func() {
		idx, _ := f.Store.WaitTables(ctx, 0, TableComponents)
		comps <- idx
	}()
	reached := make(chan uint64, 1)
	go func() {
		idx, _ := f.Store.WaitForIndex(ctx, 2)
		reached <- idx
	}()
	// Both waiters registered before the batch: the store counts them once woken.
	for f.Store.waiting() < 2 {
		time.Sleep(time.Millisecond)
	}
	for _, r := range f.ApplyBatch(logs) {
		if err := r.(*Result).Err; err != nil {
			t.Fatal(err)
		}
	}
	<-changed
	if got := <-comps; got != 3 {
		t.Fatalf("components watcher woke at %d, want 3 (the batch's last write)", got)
	}
	if got := <-reached; got != 3 {
		t.Fatalf("WaitForIndex(2) returned %d, want 3 (the batch's end)", got)
	}
	if got := f.Store.Wakeups() - before; got != 3 {
		t.Fatalf("%d wake-ups for one batch and three watchers, want 3", got)
	}
}

// TestBatchEntryMatchesOneByOne applies random command histories two ways: on one replica
// every command as a plain entry of its own through FSM.Apply, on the other grouped into
// batch entries (EncodeBatch, with undecodable commands mixed in) at the same indexes,
// through FSM.Apply or, several entries at once, FSM.ApplyBatch. Every command must get the
// same result, and both replicas the same state (audit included), table indexes and log of
// touched components.
func TestBatchEntryMatchesOneByOne(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewSource(seed))
		one, batched := New(), New()
		var idx uint64
		for idx < 150 {
			var logs []*raft.Log
			var want [][]*Result // per log, the results of its commands applied one by one
			for range 1 + r.Intn(4) {
				idx++
				var cmds [][]byte
				var res []*Result
				for range 1 + r.Intn(6) {
					data := []byte{0xff, 0x01}
					if r.Intn(15) > 0 {
						cmd := genCommand(randChooser{r})
						cmd.Time = at(idx)
						data = mustEncode(t, cmd)
					}
					before := touchedRows(t, one.Store)
					res = append(res, applyLog(t, one, idx, data))
					if cmd, err := DecodeCommand(data); err == nil {
						checkTouched(t, one.Store, before, cmd, idx)
					}
					cmds = append(cmds, data)
				}
				logs = append(logs, &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: EncodeBatch(cmds)})
				want = append(want, res)
			}
			var got []any
			if len(logs) == 1 && r.Intn(2) == 0 {
				got = []any{batched.Apply(logs[0])}
			} else {
				got = batched.ApplyBatch(logs)
			}
			for i := range logs {
				res, ok := got[i].([]*Result)
				if !ok || len(res) != len(want[i]) {
					t.Fatalf("seed %d entry %d: batch answered %T %v, want %d results", seed, logs[i].Index, got[i], got[i], len(want[i]))
				}
				for j, w := range want[i] {
					if res[j].Index != w.Index || errClass(res[j].Err) != errClass(w.Err) || !proto.Equal(res[j].Component, w.Component) {
						t.Fatalf("seed %d entry %d command %d: batch gave %+v, alone %+v", seed, logs[i].Index, j, res[j], w)
					}
				}
			}
			checkSameStores(t, seed, one.Store, batched.Store)
			if a, b := touchedSet(one.Store), touchedSet(batched.Store); !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d at %d: touched log one by one %v, batched %v", seed, idx, a, b)
			}
		}
		if err := checkInvariants(batched.Store); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checkRoundTrip(t, batched)
	}
}

// TestBatchEntryMalformed: a batch entry whose framing is broken applies nothing, gets one
// ErrDecode result, and the index still advances.
func TestBatchEntryMalformed(t *testing.T) {
	good := mustEncode(t, cmdCreateComponent(webComponent()))
	whole := EncodeBatch([][]byte{good, good})
	tooMany := EncodeBatch(make([][]byte, MaxBatch+1))
	for i, data := range [][]byte{{batchMark}, whole[:len(whole)-1], {batchMark, 0xff}, tooMany} {
		f := New()
		before := stateBytes(t, f.Store)
		res := applyLog(t, f, uint64(i+1), data)
		if !errors.Is(res.Err, ErrDecode) {
			t.Fatalf("entry %x: %v, want ErrDecode", data, res.Err)
		}
		if after := stateBytes(t, f.Store); !bytes.Equal(before, after) || f.Store.Index() != uint64(i+1) {
			t.Fatalf("entry %x changed the state or left the index at %d", data, f.Store.Index())
		}
	}
	if _, ok := New().Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: EncodeBatch(make([][]byte, MaxBatch))}).([]*Result); !ok {
		t.Fatalf("a batch of MaxBatch commands was refused")
	}
}

// TestBatchKey: commands that stamp an object's indexes name it; the others go alone; two
// writes of one component share a key whatever their kind.
func TestBatchKey(t *testing.T) {
	web := webComponent()
	same := []*statev1.Command{
		cmdCreateComponent(web),
		cmdUpdateSpec(web.Name, web.Spec),
		cmdSetDesired(web.Name, statev1.DesiredState_DESIRED_STATE_PAUSED),
		cmdScale(web.Name, 2),
		{Op: &statev1.Command_PutSecret{PutSecret: &statev1.PutSecret{Component: web.Name, Name: "K"}}},
		{Op: &statev1.Command_DeleteSecret{DeleteSecret: &statev1.DeleteSecret{Component: web.Name, Name: "K"}}},
	}
	for _, cmd := range same {
		if k, ok := BatchKey(cmd); !ok || k != "component/"+web.Name {
			t.Fatalf("BatchKey(%v) = %q, %v; want the component's key", cmd, k, ok)
		}
	}
	alone := []*statev1.Command{
		cmdDeleteComponent(web.Name),
		cmdActivate("c-api", "d-api-1"),
		cmdSetNodeStatus("n1", statev1.NodeStatus_NODE_STATUS_DRAINING),
		cmdPutPlacements(mkPlacement("p-web-1", "c-web", "d-web-1", "n1", 2)),
		{Op: &statev1.Command_FailSpecRoll{FailSpecRoll: &statev1.FailSpecRoll{ComponentId: "c-web"}}},
		{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{}}},
		{},
	}
	for _, cmd := range alone {
		if k, ok := BatchKey(cmd); ok {
			t.Fatalf("BatchKey(%v) = %q; it must go alone", cmd, k)
		}
	}
}
