package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/testkit"
	"github.com/velocity9/v9/logring"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/wasm/wasmtest"
)

// harness runs one node's data plane against an fsm.Store with no Raft: the test writes
// to the store directly, and the data plane's own writes (observed states) go through a
// fake leader that applies them to the same store.
type harness struct {
	t     *testing.T
	store *fsm.Store
	dp    *DataPlane
	logs  *logring.Ring

	mu  sync.Mutex // orders writes: the Raft log of this test
	idx uint64

	unreachable atomic.Bool // heartbeats fail: the leader cannot be reached
}

const self = "n1"

var _ Cluster = (*harness)(nil)

func (h *harness) Apply(_ context.Context, cmd *statev1.Command) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.idx++
	cmd.Time = timestamppb.Now()
	return h.idx, h.store.Apply(h.idx, cmd)
}

func (h *harness) Barrier(context.Context) error { return nil }

func (h *harness) Heartbeat(_ context.Context, req *clusterv1.HeartbeatRequest, _ time.Duration) (uint64, error) {
	if h.unreachable.Load() {
		return 0, errors.New("leader unreachable")
	}
	return h.store.Index(), nil
}

// apply commits commands as the leader would, failing the test on a rejected one.
func (h *harness) apply(cmds ...*statev1.Command) {
	h.t.Helper()
	for _, c := range cmds {
		if _, err := h.Apply(context.Background(), c); err != nil {
			h.t.Fatalf("apply %v: %v", c, err)
		}
	}
}

// newHarness starts a data plane for node n1 with the given executors; its loops end with
// the test.
func newHarness(t *testing.T, execs map[statev1.Runtime]v9rt.Executor, opts ...func(*harness, *Config)) *harness {
	t.Helper()
	arts, err := OpenArtifacts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: fsm.NewStore(), logs: logring.New(100)}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{
		NodeID: self, Store: h.store, Cluster: h, Artifacts: arts, Executors: execs, Logs: h.logs,
		Logger:            slog.New(slog.DiscardHandler),
		HeartbeatInterval: 10 * time.Millisecond, Lease: 60 * time.Millisecond, FenceBudget: 200 * time.Millisecond,
	}
	for _, o := range opts {
		o(h, &cfg)
	}
	h.dp, err = New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, loop := range h.dp.Loops() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		h.dp.Close()
	})
	h.apply(registerNode(self, "127.0.0.1:2"))
	return h
}

// artifact stores a bundle holding a tiny WAGI module that answers body, and returns its
// digest.
func (h *harness) artifact(body string) string {
	h.t.Helper()
	dir := h.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.wasm"), wasmtest.TinyCGI("Content-Type: text/plain\n\n"+body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := deploy.Pack(dir, &buf); err != nil {
		h.t.Fatal(err)
	}
	d, err := h.dp.cfg.Artifacts.Put(&buf)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// component creates a wasm component "hello" (c1) with a ready, active deployment d1
// whose module answers body.
func (h *harness) component(exclusive bool, body string) {
	h.t.Helper()
	h.apply(createComponent("c1", "hello", exclusive), createDeployment("d1", "c1", h.artifact(body)), activate("c1", "d1"))
}

// deployment adds a ready deployment of c1 whose module answers body.
func (h *harness) deployment(id, body string) {
	h.t.Helper()
	h.apply(createDeployment(id, "c1", h.artifact(body)))
}

func (h *harness) place(id, dep, node string, desired statev1.PlacementDesired, epoch uint64) {
	h.t.Helper()
	p := putPlacement(id, "c1", dep, node, desired)
	p.GetPutPlacements().Placements[0].Epoch = epoch
	h.apply(p)
}

func createComponent(id, name string, exclusive bool) *statev1.Command {
	max := uint32(3)
	if exclusive {
		max = 1
	}
	return &statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: id, Name: name, Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
		Spec:    &statev1.ComponentSpec{ScaleMax: max, Exclusive: exclusive, Wasm: &statev1.WasmSpec{Module: "hello.wasm"}},
	}}}}
}

func createDeployment(id, component, digest string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
		Id: id, ComponentId: component, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: digest,
	}}}}
}

func activate(component, deployment string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_ActivateDeployment{ActivateDeployment: &statev1.ActivateDeployment{ComponentId: component, DeploymentId: deployment}}}
}

func putPlacement(id, component, dep, node string, desired statev1.PlacementDesired) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: []*statev1.Placement{{
		Id: id, ComponentId: component, DeploymentId: dep, NodeId: node, Desired: desired,
	}}}}}
}

func deletePlacements(ids ...string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_DeletePlacements{DeletePlacements: &statev1.DeletePlacements{Ids: ids}}}
}

func registerNode(id, proxyAddr string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
		Id: id, ApiAddr: id + ":7900", RaftAddr: id + ":7901", ProxyAddr: proxyAddr,
	}}}}
}

func setObserved(id string, o statev1.PlacementObserved) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{Id: id, Observed: o}}}
}

func (h *harness) placement(id string) *statev1.Placement {
	for _, p := range h.store.Placements("") {
		if p.Id == id {
			return p
		}
	}
	return nil
}

// waitObserved waits until the store holds the observed state the data plane reported. It
// wakes on the store's writes, not on a timer: a report is a write.
func (h *harness) waitObserved(id string, want statev1.PlacementObserved) *statev1.Placement {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ch, _ := h.store.Changed()
		p := h.placement(id)
		if p != nil && p.Observed == want {
			return p
		}
		select {
		case <-ch:
		case <-deadline:
			h.t.Fatalf("placement %s: %v, want %s", id, p, want)
		}
	}
}

// waitCandidates waits until hello's on-demand candidates are want, in order.
func (h *harness) waitCandidates(want ...string) {
	h.t.Helper()
	testkit.Eventually(h.t, 5*time.Second, func() error {
		if c := h.dp.router.onDemand("hello"); c == nil || !slices.Equal(c.candidates, want) {
			return fmt.Errorf("candidates %+v, want %v", c, want)
		}
		return nil
	})
}

// get serves one request through the routing snapshot, the way the proxy picks a handler.
func (h *harness) get() (int, string) {
	tg := h.dp.Router().Lookup("hello")
	var hd http.Handler
	switch {
	case len(tg.Local) > 0:
		hd = tg.Local[0]
	case tg.OnDemand != nil && len(tg.Remote) == 0:
		hd = tg.OnDemand
	default:
		return 0, fmt.Sprintf("no local handler: %+v", tg)
	}
	rec := httptest.NewRecorder()
	hd.ServeHTTP(rec, httptest.NewRequest("GET", "/hello/x", nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// fakeExec is an Executor the test controls: starts fail while failStarts > 0, and
// instances crash when told.
type fakeExec struct {
	mu         sync.Mutex
	failStarts int
	failDeploy string // starts of this deployment always fail
	starts     []time.Time
	running    map[string]*fakeInstance
	stops      int
	block      chan struct{} // when set, a start waits until it is closed
}

var _ v9rt.Executor = (*fakeExec)(nil)

func newFakeExec() *fakeExec { return &fakeExec{running: map[string]*fakeInstance{}} }

func (e *fakeExec) Runtime() string { return "wasm" }

func (e *fakeExec) Start(ctx context.Context, spec v9rt.Spec) (v9rt.Instance, error) {
	e.mu.Lock()
	block := e.block
	e.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starts = append(e.starts, time.Now())
	if e.failStarts > 0 {
		e.failStarts--
		return nil, errors.New("boom")
	}
	if spec.DeploymentID == e.failDeploy {
		return nil, errors.New("broken deployment")
	}
	in := &fakeInstance{id: spec.ID, dep: spec.DeploymentID, done: make(chan struct{})}
	e.running[spec.ID] = in
	return in, nil
}

func (e *fakeExec) Stop(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.running[id]; ok {
		delete(e.running, id)
		e.stops++
	}
	return nil
}

func (e *fakeExec) isRunning(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running[id] != nil
}

func (e *fakeExec) startTimes() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.starts...)
}

// crash makes a running instance stop on its own.
func (e *fakeExec) crash(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.running[id]
	delete(e.running, id)
	in.err = errors.New("segfault")
	close(in.done)
}

type fakeInstance struct {
	id, dep string
	done    chan struct{}
	err     error
}

func (f *fakeInstance) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	io.WriteString(w, "fake "+f.dep)
}
func (f *fakeInstance) ID() string            { return f.id }
func (f *fakeInstance) Done() <-chan struct{} { return f.done }
func (f *fakeInstance) Err() error            { return f.err }
