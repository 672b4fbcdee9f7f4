package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// tableBytes encodes each table of st on its own.
func tableBytes(t testing.TB, st *Store) [numTables][]byte {
	t.Helper()
	s := st.State()
	lists := [numTables][]proto.Message{
		TableComponents:  messages(s.Components),
		TableDeployments: messages(s.Deployments),
		TableNodes:       messages(s.Nodes),
		TablePlacements:  messages(s.Placements),
		TableUsers:       messages(s.Users),
		TableTokens:      append(messages(s.ApiTokens), messages(s.GithubBindings)...),
		TableLinks:       messages(s.GithubLinks),
	}
	var out [numTables][]byte
	for i, l := range lists {
		for _, m := range l {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = append(append(out[i], b...), 0xff)
		}
	}
	return out
}

// messages is xs as proto messages.
func messages[M proto.Message](xs []M) []proto.Message {
	out := make([]proto.Message, 0, len(xs))
	for _, x := range xs {
		out = append(out, x)
	}
	return out
}

// checkTables requires that a command applied at index changed only tables TablesOf names,
// and that each of those reports index as its last change.
func checkTables(t testing.TB, st *Store, before [numTables][]byte, cmd *statev1.Command, index uint64, err error) {
	t.Helper()
	after := tableBytes(t, st)
	named := tablesOf(cmd)
	for tb := range numTables {
		if !bytes.Equal(before[tb], after[tb]) && named&(1<<tb) == 0 {
			t.Fatalf("command %v changed table %s, which TablesOf does not name", cmd, tb)
		}
		if err == nil && named&(1<<tb) != 0 && st.TableIndex(tb) != index {
			t.Fatalf("command %v at %d: table %s index %d", cmd, index, tb, st.TableIndex(tb))
		}
	}
}

// TestTablesOfCoversWhatCommandsChange applies every kind of command on the fixture and
// checks each changes only the tables TablesOf names.
func TestTablesOfCoversWhatCommandsChange(t *testing.T) {
	cmds := []*statev1.Command{
		cmdCreateComponent(newComponent(nil)),
		cmdUpdateSpec("web", withSpec(func(s *statev1.ComponentSpec) { s.ScaleMin, s.ScaleMax = 2, 4 })),
		cmdSetDesired("web", statev1.DesiredState_DESIRED_STATE_PAUSED),
		cmdScale("web", 3),
		cmdPutPlacements(mkPlacement("p-web-9", "c-web", "d-web-1", "n1", 2)),
		cmdSetObserved("p-web-9", statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING, "ok"),
		cmdSetDeploymentStatus("d-web-2", statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING, "", ""),
		cmdActivate("c-api", "d-api-1"),
		cmdSetNodeStatus("n1", statev1.NodeStatus_NODE_STATUS_DOWN),
		cmdDeletePlacements("p-web-9"),
		cmdDeleteToken("k1"),
		cmdDeleteLink("c-web"),
		cmdRemoveNode("n1"),
		cmdDeleteComponent("web"),
	}
	st := fixture(t)
	for i, c := range cmds {
		idx := fixtureIndex + uint64(i) + 1
		c.Time = at(idx)
		before := tableBytes(t, st)
		err := st.Apply(idx, c)
		checkTables(t, st, before, c, idx, err)
	}
}

// TestWaitTablesWakesOnlyWatchersOfChangedTables: a component write wakes a watcher of
// components, not one of placements; a refused command wakes no table watcher;
// WaitForIndex wakes once its index is reached, not at every write before.
func TestWaitTablesWakesOnlyWatchersOfChangedTables(t *testing.T) {
	st := fixture(t)
	idx := uint64(fixtureIndex)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		idx uint64
		err error
	}
	watch := func(min uint64, f func(context.Context) (uint64, error)) chan result {
		ch := make(chan result, 1)
		go func() {
			i, err := f(ctx)
			ch <- result{i, err}
		}()
		return ch
	}
	plIdx := st.TableIndex(TablePlacements)
	placements := watch(plIdx, func(ctx context.Context) (uint64, error) { return st.WaitTables(ctx, plIdx, TablePlacements) })
	compIdx := st.TableIndex(TableComponents)
	components := watch(compIdx, func(ctx context.Context) (uint64, error) {
		return st.WaitTables(ctx, compIdx, TableComponents, TableNodes)
	})
	far := watch(0, func(ctx context.Context) (uint64, error) { return st.WaitForIndex(ctx, idx+3) })
	waitWaiters(t, st, 3)
	w0 := st.Wakeups()

	idx++
	if err := st.Apply(idx, cmdScale("web", 3)); err != nil {
		t.Fatal(err)
	}
	if r := <-components; r.err != nil || r.idx != idx {
		t.Fatalf("components watcher: %+v, want index %d", r, idx)
	}
	idx++
	if err := st.Apply(idx, cmdScale("nope", 3)); err == nil {
		t.Fatal("scaling an unknown component succeeded")
	}
	if got := st.Wakeups() - w0; got != 1 {
		t.Fatalf("%d watchers woken by a component write and a refused one, want 1", got)
	}
	select {
	case r := <-placements:
		t.Fatalf("placements watcher woken by a component write: %+v", r)
	case r := <-far:
		t.Fatalf("WaitForIndex(%d) woken at %d: %+v", idx+1, idx, r)
	default:
	}
	idx++
	if err := st.Apply(idx, cmdDeletePlacements("p-web-1")); err != nil {
		t.Fatal(err)
	}
	if r := <-placements; r.err != nil || r.idx != idx {
		t.Fatalf("placements watcher: %+v, want index %d", r, idx)
	}
	if r := <-far; r.err != nil || r.idx != idx {
		t.Fatalf("WaitForIndex: %+v, want %d", r, idx)
	}
	// Already past: no wait. A cancelled wait returns the index and leaves no waiter.
	if i, err := st.WaitTables(ctx, compIdx, TableComponents); err != nil || i != uint64(fixtureIndex)+1 {
		t.Fatalf("past index: %d %v", i, err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := st.WaitTables(cctx, idx, TableUsers); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if n := waiters(st); n != 0 {
		t.Fatalf("%d waiters left", n)
	}
	// Restore changes every table.
	users := watch(0, func(ctx context.Context) (uint64, error) {
		return st.WaitTables(ctx, st.TableIndex(TableUsers), TableUsers)
	})
	waitWaiters(t, st, 1)
	s := st.State()
	s.Index = idx + 10
	if err := st.Restore(s); err != nil {
		t.Fatal(err)
	}
	if r := <-users; r.err != nil || r.idx != idx+10 {
		t.Fatalf("users watcher after restore: %+v", r)
	}
}

func waiters(st *Store) int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.waiters)
}

func waitWaiters(t *testing.T, st *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for waiters(st) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters registered, want %d", waiters(st), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWatchTablesInSelect: the channel form closes on a change of its tables only, and
// stop unregisters it.
func TestWatchTablesInSelect(t *testing.T) {
	st := fixture(t)
	idx := st.TableIndex(TablePlacements)
	ch, stop := st.WatchTables(idx, TablePlacements)
	if err := st.Apply(fixtureIndex+1, cmdScale("web", 3)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("placements watch closed by a component write")
	default:
	}
	if err := st.Apply(fixtureIndex+2, cmdDeletePlacements("p-web-1")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("placements watch still open after a placement write")
	}
	stop()
	// Already past: closed at once. Stopped watches leave no waiter.
	ch, stop = st.WatchTables(idx, TablePlacements)
	select {
	case <-ch:
	default:
		t.Fatal("watch from an old index not closed")
	}
	stop()
	_, stop = st.WatchTables(st.TableIndex(TableUsers), TableUsers)
	stop()
	if n := waiters(st); n != 0 {
		t.Fatalf("%d waiters left", n)
	}
}

// TouchedSince names the components touched after an index, forgets the oldest half of its
// log once full (and says so), and knows nothing from before a restore.
func TestViewTouchedSince(t *testing.T) {
	var r touches
	for i := uint64(1); i <= touchLog; i++ {
		r.add(i, fmt.Sprintf("c%d", i))
	}
	var got []string
	if !r.since(touchLog-2, func(id string) { got = append(got, id) }) || !slices.Equal(got, []string{fmt.Sprintf("c%d", touchLog), fmt.Sprintf("c%d", touchLog-1)}) {
		t.Fatalf("since %d: %v", touchLog-2, got)
	}
	r.add(touchLog+1, "last")
	if r.since(10, func(string) {}) {
		t.Fatal("a full log still claims to remember index 10")
	}
	if !r.since(touchLog, func(id string) { got = append(got, id) }) || got[len(got)-1] != "last" {
		t.Fatalf("after the log was cut: %v", got)
	}

	st := NewStore()
	for i, c := range []*statev1.Command{
		cmdCreateComponent(&statev1.Component{Id: "c1", Name: "a", Replicas: 1, Runtime: statev1.Runtime_RUNTIME_WASM, Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 1}}),
		cmdCreateComponent(&statev1.Component{Id: "c2", Name: "b", Replicas: 1, Runtime: statev1.Runtime_RUNTIME_WASM, Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 1}}),
		cmdDeleteComponent("a"),
	} {
		if err := st.Apply(uint64(i+1), c); err != nil {
			t.Fatal(err)
		}
	}
	var touched []string
	st.View(func(v View) {
		if !v.TouchedSince(1, func(id string) { touched = append(touched, id) }) || !slices.Equal(touched, []string{"c1", "c2"}) {
			t.Fatalf("touched since 1: %v", touched)
		}
	})
	epoch := uint64(0)
	st.View(func(v View) { epoch = v.Epoch() })
	if err := st.Restore(st.State()); err != nil {
		t.Fatal(err)
	}
	st.View(func(v View) {
		if v.Epoch() == epoch || v.TouchedSince(1, func(string) {}) {
			t.Fatal("a restored store claims to know changes from before the restore")
		}
	})
}

// touchedRows maps every component, deployment and placement row to its component and its
// encoding, to tell which components a command touched.
func touchedRows(t testing.TB, st *Store) map[string][2]string {
	t.Helper()
	rows := map[string][2]string{}
	s := st.State()
	enc := func(m proto.Message) string {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range s.Components {
		rows["c/"+c.Id] = [2]string{c.Id, enc(c)}
	}
	for _, d := range s.Deployments {
		rows["d/"+d.Id] = [2]string{d.ComponentId, enc(d)}
	}
	for _, p := range s.Placements {
		rows["p/"+p.Id] = [2]string{p.ComponentId, enc(p)}
	}
	return rows
}

// checkTouched requires that TouchedSince(index-1) names every component whose row, or one
// of whose deployments or placements, the command at index added, changed or removed.
func checkTouched(t testing.TB, st *Store, before map[string][2]string, cmd *statev1.Command, index uint64) {
	t.Helper()
	after := touchedRows(t, st)
	named := map[string]bool{}
	known := true
	st.View(func(v View) { known = v.TouchedSince(index-1, func(id string) { named[id] = true }) })
	if !known {
		return // derive everything: nothing can be missed
	}
	for k, a := range after {
		if b, ok := before[k]; (!ok || b[1] != a[1]) && !named[a[0]] {
			t.Fatalf("command %v at %d changed %s, but TouchedSince does not name component %s (named %v)", cmd, index, k, a[0], named)
		}
	}
	for k, b := range before {
		if _, ok := after[k]; !ok && !named[b[0]] {
			t.Fatalf("command %v at %d removed %s, but TouchedSince does not name component %s (named %v)", cmd, index, k, b[0], named)
		}
	}
}

// TestTouchedSinceNamesWhatCommandsChange applies every kind of command that changes a
// component, deployment or placement, each successfully, and checks after each that
// View.TouchedSince names every component it touched (checkTouched).
func TestTouchedSinceNamesWhatCommandsChange(t *testing.T) {
	st := fixture(t)
	idx := uint64(fixtureIndex)
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	spec := wasmSpec()
	spec.Env = map[string]string{"NEW": "1"}
	for _, c := range []*statev1.Command{
		cmdCreateComponent(newComponent(nil)),
		cmdUpdateSpec("web", spec),
		cmdFailSpecRoll("c-web", fixtureIndex+2, "every new instance failed"),
		cmdSetDesired("web", statev1.DesiredState_DESIRED_STATE_PAUSED),
		cmdScale("web", 3),
		cmdPutSecret("web", "API_KEY", []byte("sealed")),
		{Op: &statev1.Command_DeleteSecret{DeleteSecret: &statev1.DeleteSecret{Component: "web", Name: "API_KEY"}}},
		cmdPutPlacements(&statev1.Placement{Id: "p-api-9", ComponentId: "c-api", DeploymentId: "d-api-1", NodeId: "n2", Desired: run, Epoch: 1}),
		cmdSetObserved("p-api-9", statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING, "ok"),
		cmdCreateDeployment(&statev1.Deployment{Id: "d-api-2", ComponentId: "c-api", Status: stReady, ArtifactDigest: "sha256:03"}),
		cmdActivate("c-api", "d-api-2"), // a newer one replacing a running one: a canary
		{Op: &statev1.Command_StartCanary{StartCanary: &statev1.StartCanary{DeploymentId: "d-api-2"}}},
		{Op: &statev1.Command_EndCanary{EndCanary: &statev1.EndCanary{DeploymentId: "d-api-2"}}},
		{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
			Id: "d-api-2", Status: stFailed, Error: "crashed", Fallback: "d-api-1"}}},
		cmdSetNodeStatus("n2", statev1.NodeStatus_NODE_STATUS_DOWN),
		cmdDeletePlacements("p-api-9"),
		cmdRemoveNode("n1"),
		cmdDeleteComponent("web"),
	} {
		idx++
		c.Time = at(idx)
		before := touchedRows(t, st)
		if err := st.Apply(idx, c); err != nil {
			t.Fatalf("command %v at %d: %v", c, idx, err)
		}
		checkTouched(t, st, before, c, idx)
	}
}
