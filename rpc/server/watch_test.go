package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/fsm"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

type storeBackend struct {
	ComponentBackend
	store *fsm.Store
	since *atomic.Int64 // SinceLeaderContact, nil for 0
}

func (b storeBackend) Store() *fsm.Store { return b.store }

func (b storeBackend) SinceLeaderContact() time.Duration {
	if b.since == nil {
		return 0
	}
	return time.Duration(b.since.Load())
}

// TestWatchEndsWhenCutOffFromTheLeader: a Watch on a node that stops hearing from a leader
// (cut off: its copy no longer moves) ends with Unavailable within the check period, and a
// Watch opened there meanwhile is refused at once, rather than show a frozen copy as live.
func TestWatchEndsWhenCutOffFromTheLeader(t *testing.T) {
	since := new(atomic.Int64)
	mux := http.NewServeMux()
	mux.Handle(componentv1connect.NewComponentServiceHandler(&Components{B: storeBackend{store: fsm.NewStore(), since: since}}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := componentv1connect.NewComponentServiceClient(srv.Client(), srv.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	stream, err := client.Watch(ctx, connect.NewRequest(&componentv1.WatchRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() {
		t.Fatalf("first page: %v", stream.Err())
	}
	since.Store(int64(time.Hour))
	for stream.Receive() {
	}
	if code := connect.CodeOf(stream.Err()); code != connect.CodeUnavailable {
		t.Fatalf("a Watch on a node cut off from its leader ended with %v, want Unavailable", stream.Err())
	}
	again, err := client.Watch(ctx, connect.NewRequest(&componentv1.WatchRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Receive() {
		t.Fatal("a Watch opened on a node cut off from its leader sent a page")
	}
	if code := connect.CodeOf(again.Err()); code != connect.CodeUnavailable {
		t.Fatalf("a Watch opened on a cut-off node: %v, want Unavailable", again.Err())
	}
}

// TestWatchSendsDeltas: a Watch stream sends its page whole once, then only the rows that
// changed, entered or left the page (a component paused; one created that shifts the page;
// one deleted), through a real Connect stream. It logs the bytes a change costs: the whole
// List page the console fetched before, against the stream's message now.
func TestWatchSendsDeltas(t *testing.T) {
	st := fsm.NewStore()
	idx := uint64(0)
	apply := func(cmd *statev1.Command) {
		t.Helper()
		idx++
		if err := st.Apply(idx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	create := func(name string) {
		apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
			Id: "id-" + name, Name: name, Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
			Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
			Source:  &statev1.Source{GithubRepo: "octocat/" + name, Branch: "main"},
			Spec:    &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3},
		}}}})
	}
	for i := range 60 {
		create(fmt.Sprintf("c%02d", i))
	}

	svc := &Components{B: storeBackend{store: st}}
	mux := http.NewServeMux()
	mux.Handle(componentv1connect.NewComponentServiceHandler(svc))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := componentv1connect.NewComponentServiceClient(srv.Client(), srv.URL)
	stream, err := client.Watch(t.Context(), connect.NewRequest(&componentv1.WatchRequest{Limit: 50}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	next := func() *componentv1.WatchResponse {
		t.Helper()
		if !stream.Receive() {
			t.Fatalf("stream ended: %v", stream.Err())
		}
		return stream.Msg()
	}
	names := func(m *componentv1.WatchResponse) []string {
		var out []string
		for _, r := range m.Rows {
			out = append(out, r.Component.GetName())
		}
		return out
	}

	first := next()
	if !first.Full || len(first.Rows) != 50 || first.Total != 60 || first.Rows[0].Component.GetName() != "c00" || first.Rows[49].Component.GetName() != "c49" {
		t.Fatalf("first message: full %v, %d rows %v, total %d; want the whole page c00..c49 of 60", first.Full, len(first.Rows), names(first), first.Total)
	}
	list, err := client.List(t.Context(), connect.NewRequest(&componentv1.ListRequest{Limit: 50}))
	if err != nil {
		t.Fatal(err)
	}

	apply(&statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{Name: "c10", Desired: statev1.DesiredState_DESIRED_STATE_PAUSED}}})
	paused := next()
	if paused.Full || !slices.Equal(names(paused), []string{"c10"}) || len(paused.Removed) != 0 || paused.Index != idx ||
		paused.Rows[0].Component.GetDesired() != statev1.DesiredState_DESIRED_STATE_PAUSED || paused.Rows[0].Status.GetWanted() != 0 {
		t.Fatalf("after a pause: %v, want only c10, paused, at index %d", paused, idx)
	}
	// The Connect envelope adds 5 bytes to each message.
	before, after := proto.Size(list.Msg)+5, proto.Size(paused)+5
	t.Logf("bytes per list change (a 50-row page, one component paused): List page %d B before, Watch change %d B now", before, after)
	if after*10 > before {
		t.Fatalf("a change costs %d B, more than a tenth of the page (%d B)", after, before)
	}

	// A new first component shifts the page: it enters, the last one leaves.
	create("a-new")
	shifted := next()
	if !slices.Equal(names(shifted), []string{"a-new"}) || !slices.Equal(shifted.Removed, []string{"c49"}) || shifted.Total != 61 {
		t.Fatalf("after a create: rows %v, removed %v, total %d; want a-new in, c49 out, 61", names(shifted), shifted.Removed, shifted.Total)
	}
	apply(&statev1.Command{Op: &statev1.Command_DeleteComponent{DeleteComponent: &statev1.DeleteComponent{Name: "c10"}}})
	deleted := next()
	if !slices.Equal(names(deleted), []string{"c49"}) || !slices.Equal(deleted.Removed, []string{"c10"}) || deleted.Total != 60 {
		t.Fatalf("after a delete: rows %v, removed %v, total %d; want c49 back in, c10 out, 60", names(deleted), deleted.Removed, deleted.Total)
	}
}

// TestWatchPageUpdate: a page read again unchanged sends nothing; a changed total alone is
// sent.
func TestWatchPageUpdate(t *testing.T) {
	row := func(name string, replicas uint32) *componentv1.ListRow {
		return &componentv1.ListRow{Component: &statev1.Component{Name: name, Replicas: replicas}, Status: &componentv1.ComponentStatus{}}
	}
	var p watchPage
	if m := p.update(5, 2, []*componentv1.ListRow{row("a", 1), row("b", 1)}, true); !m.Full || len(m.Rows) != 2 {
		t.Fatalf("first = %v", m)
	}
	if m := p.update(6, 2, []*componentv1.ListRow{row("a", 1), row("b", 1)}, false); m != nil {
		t.Fatalf("unchanged page sent %v", m)
	}
	if m := p.update(7, 3, []*componentv1.ListRow{row("a", 1), row("b", 1)}, false); m == nil || m.Total != 3 || len(m.Rows) != 0 {
		t.Fatalf("a new total alone: %v", m)
	}
	if m := p.update(8, 3, []*componentv1.ListRow{row("a", 2), row("b", 1)}, false); m == nil || len(m.Rows) != 1 || m.Rows[0].Component.Replicas != 2 {
		t.Fatalf("a changed row: %v", m)
	}
}
