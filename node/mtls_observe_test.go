//go:build !race

package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestObservedStateOnlyFromItsNode: a node's certificate cannot report the observed state
// of a placement on another node. (Without -race: it builds the Go wasm module, like the
// data-plane tests.)
func TestObservedStateOnlyFromItsNode(t *testing.T) {
	c := NewTestCluster(t, 3)
	l := c.Leader(t)
	base := "https://" + l.APIAddr()
	var err error
	// Observed state: a node cannot report a placement of another node; each node's own
	// reports (a follower's forwarded to the leader) still get through.
	mustUpload(t, c.Follower(t), helloDir(t, ""))
	var victim *statev1.Placement
	Eventually(t, 60*time.Second, func() error {
		ps := l.Store().Placements("")
		if len(ps) == 0 {
			return fmt.Errorf("no placement yet")
		}
		for _, p := range ps {
			if p.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
				return fmt.Errorf("placement %s on %s is %s", p.Id, p.NodeId, p.Observed)
			}
		}
		victim = ps[0]
		return nil
	})
	// The deadline starts here: building and placing the module may take most of a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	caller := "n1"
	if victim.NodeId == caller {
		caller = "n2"
	}
	_, err = clusterv1connect.NewInternalServiceClient(nodeClient(c, caller), base).Apply(ctx, connect.NewRequest(&clusterv1.ApplyRequest{Command: &statev1.Command{Op: &statev1.Command_SetPlacementObserved{
		SetPlacementObserved: &statev1.SetPlacementObserved{Id: victim.Id, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, Reason: "forged"}}}}))
	wantDenied(t, "observed state of "+victim.NodeId+"'s placement with "+caller+"'s certificate", err, victim.NodeId, caller)
	for _, p := range l.Store().Placements("") {
		if p.Reason == "forged" {
			t.Fatalf("forged report applied: %+v", p)
		}
	}
}
