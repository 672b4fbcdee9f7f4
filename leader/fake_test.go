package leader

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// fakeStore is every controller's narrow interface over an fsm.Store, with no Raft: Apply
// applies at the next index, and every command is recorded.
type fakeStore struct {
	st *fsm.Store

	mu       sync.Mutex
	index    uint64
	applied  []*statev1.Command
	logs     []string
	applyErr error // when set, Apply fails with it and changes nothing
}

func newFake(t *testing.T, s *statev1.State) *fakeStore {
	t.Helper()
	f := &fakeStore{st: fsm.NewStore()}
	if err := f.st.Restore(s); err != nil {
		t.Fatal(err)
	}
	f.index = s.GetIndex()
	return f
}

func (f *fakeStore) Apply(_ context.Context, cmd *statev1.Command) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applyErr != nil {
		return 0, f.applyErr
	}
	f.index++
	cmd.Time = timestamppb.Now()
	f.applied = append(f.applied, cmd)
	return f.index, f.st.Apply(f.index, cmd)
}

func (f *fakeStore) ApplyAsLeader(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	return f.Apply(ctx, cmd)
}

func (f *fakeStore) ViewState(fn func(*statev1.State)) { f.st.ViewState(fn) }
func (f *fakeStore) View(fn func(fsm.View))            { f.st.View(fn) }
func (f *fakeStore) State() *statev1.State             { return f.st.State() }
func (f *fakeStore) Nodes() []*statev1.Node            { return f.st.Nodes() }
func (f *fakeStore) TableIndex(ts ...fsm.Table) uint64 { return f.st.TableIndex(ts...) }
func (f *fakeStore) WaitTables(ctx context.Context, min uint64, ts ...fsm.Table) (uint64, error) {
	return f.st.WaitTables(ctx, min, ts...)
}

func (f *fakeStore) SystemLog(component, line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, component+": "+line)
}

// commands returns the commands applied so far and forgets them.
func (f *fakeStore) commands() []*statev1.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.applied
	f.applied = nil
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

const wasm = statev1.Runtime_RUNTIME_WASM

func readyNode(id string) *statev1.Node {
	return &statev1.Node{Id: id, Status: statev1.NodeStatus_NODE_STATUS_READY, Runtimes: []statev1.Runtime{wasm}}
}

// oneComponent is a state with component "hello" (id c1) running deployment d1.
func oneComponent(replicas uint32, nodes ...*statev1.Node) *statev1.State {
	return &statev1.State{
		Index: 10,
		Nodes: nodes,
		Components: []*statev1.Component{{
			Id: "c1", Name: "hello", Runtime: wasm, Replicas: replicas, ActiveDeploymentId: "d1",
			Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
			Spec:    &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Concurrency: 1},
		}},
		Deployments: []*statev1.Deployment{{Id: "d1", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, CreateIndex: 5}},
	}
}
