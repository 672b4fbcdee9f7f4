//go:build !race

package node

import (
	"context"
	"testing"
	"time"

	"github.com/velocity9/v9/auth"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// BenchmarkWakeupsPerComponentWrite counts the watchers on one node (state loops and
// blocking queries) that a write to the components table wakes: a one-node cluster serves
// hello, then 40 writes that change only hello's desired state (to what it already is)
// are committed 50 ms apart. Run with -benchtime=1x.
func BenchmarkWakeupsPerComponentWrite(b *testing.B) {
	c := NewTestCluster(b, 1)
	n := c.Leader(b)
	uctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := upload(uctx, n, helloDirB(b)); err != nil {
		b.Fatal(err)
	}
	waitServing(b, []*Node{n}, "")
	ctx := auth.AsCaller(context.Background(), TestToken)
	const writes = 40
	cmd := &statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{
		Name: "hello", Desired: statev1.DesiredState_DESIRED_STATE_RUNNING}}}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	<-tick.C
	before := n.Store().Wakeups()
	for range writes {
		if _, err := n.Apply(ctx, cmd); err != nil {
			b.Fatal(err)
		}
		<-tick.C
	}
	b.ReportMetric(float64(n.Store().Wakeups()-before)/writes, "wakeups/write")
}
