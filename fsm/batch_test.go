package fsm

import (
	"bytes"
	"context"
	"math/rand"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
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
			if a, b := stateBytes(t, one.Store), stateBytes(t, batched.Store); !bytes.Equal(a, b) {
				t.Fatalf("seed %d at %d: replicas diverged:\n%s", seed, idx, diffStates(a, b))
			}
			for tb := range numTables {
				if a, b := one.Store.TableIndex(tb), batched.Store.TableIndex(tb); a != b {
					t.Fatalf("seed %d at %d: table %s index %d one by one, %d batched", seed, idx, tb, a, b)
				}
			}
			if one.Store.Index() != batched.Store.Index() {
				t.Fatalf("seed %d: index %d one by one, %d batched", seed, one.Store.Index(), batched.Store.Index())
			}
		}
		if err := checkInvariants(batched.Store); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
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
