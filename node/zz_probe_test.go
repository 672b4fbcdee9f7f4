package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"testing"

	"connectrpc.com/connect"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func TestZZProbeCPU(t *testing.T) {
	c := NewTestClusterOpts(t, 3, TestOptions{Raft: RaftConfig{}})
	for _, n := range c.Nodes {
		n.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cli := componentClient(c.Leader(t))
	w := func(base int) func(i int) error {
		return func(i int) error {
			_, err := cli.Create(context.Background(), connect.NewRequest(&componentv1.CreateRequest{
				Name: fmt.Sprintf("bench-%06d", base+i), Runtime: statev1.Runtime_RUNTIME_WASM,
				Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Env: map[string]string{"GREETING": "hi"}},
			}))
			return err
		}
	}
	runWrites(t, 1500, w(0))
	f, _ := os.Create("/tmp/i8v9.out")
	pprof.StartCPUProfile(f)
	r, _ := runWrites(t, 1500, w(1500))
	pprof.StopCPUProfile()
	f.Close()
	t.Logf("rate %.0f", r)
}
