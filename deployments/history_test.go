package deployments

import (
	"context"
	"testing"
	"time"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestDeploymentsBlockingQuery: a list with min_index answers once the deployments table
// moves past it (a new deployment, a status change), not at a write to another table, and
// answers unchanged when its wait ends.
func TestDeploymentsBlockingQuery(t *testing.T) {
	st := fsm.NewStore()
	index := uint64(0)
	apply := func(cmd *statev1.Command) {
		t.Helper()
		index++
		if err := st.Apply(index, cmd); err != nil {
			t.Fatal(err)
		}
	}
	apply(&statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "c1", Name: "web", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1, Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 1},
	}}}})
	apply(&statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: &statev1.Deployment{
		Id: "d1", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
	}}}})
	s := New(Config{State: st})
	ds, idx, err := s.Deployments(context.Background(), "web", 0, 0)
	if err != nil || len(ds) != 1 || idx != index {
		t.Fatalf("first read: %v, index %d (want %d), %v", ds, idx, index, err)
	}

	// Nothing changes: the read answers unchanged when its wait ends.
	start := time.Now()
	if _, again, err := s.Deployments(context.Background(), "web", idx+1, 50*time.Millisecond); err != nil || again != idx || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("unchanged read: index %d after %s, %v", again, time.Since(start), err)
	}

	type answer struct {
		ds  []*statev1.Deployment
		idx uint64
		err error
	}
	got := make(chan answer, 1)
	go func() {
		ds, i, err := s.Deployments(context.Background(), "web", idx+1, time.Minute)
		got <- answer{ds, i, err}
	}()
	// A write to another table does not answer it.
	apply(&statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{Id: "n1", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2"}}}})
	select {
	case a := <-got:
		t.Fatalf("answered at a node write: %+v", a)
	case <-time.After(100 * time.Millisecond):
	}
	apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: "d1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, Error: "no module",
	}}})
	select {
	case a := <-got:
		if a.err != nil || a.idx != index || len(a.ds) != 1 || a.ds[0].Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
			t.Fatalf("after the status change: %+v (want index %d)", a, index)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the status change did not answer the blocking read")
	}
	if _, _, err := s.Deployments(context.Background(), "nosuch", 0, 0); err == nil {
		t.Fatal("a missing component: want an error")
	}
}
