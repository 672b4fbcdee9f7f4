package observe

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/logring"
	logsv1 "github.com/velocity9/v9/rpc/gen/v9/logs/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	statsv1 "github.com/velocity9/v9/rpc/gen/v9/stats/v1"
)

// fakePeers answers for n2 and fails for n3, as a node that is down would.
type fakePeers struct{ bucket int64 }

func (f fakePeers) TailLogs(_ context.Context, addr string, req *logsv1.TailRequest, emit func(*logsv1.TailResponse) error) error {
	if addr != "n2:7900" || !req.Local {
		return errors.New("unreachable")
	}
	return emit(&logsv1.TailResponse{Lines: []*logsv1.LogLine{{NodeId: "n2", Text: "from n2", Time: timestamppb.New(time.Unix(1, 0))}}})
}

func (f fakePeers) Series(_ context.Context, addr string, req *statsv1.SeriesRequest) (*statsv1.SeriesResponse, error) {
	if addr != "n2:7900" || !req.Local {
		return nil, errors.New("unreachable")
	}
	// Two requests of 7 ms, in the histogram's 7.5 ms bucket.
	h := make([]uint64, len(LatencyBoundsMs)+1)
	h[6] = 2
	return &statsv1.SeriesResponse{Nodes: []string{"n2"}, Buckets: []*statsv1.Bucket{{StartUnix: f.bucket, Requests: 2, Status_2Xx: 2, LatencyMaxMs: 7, LatencyHistogram: h}}}, nil
}

func service(t *testing.T, peers Peers) (*Service, *logring.Ring, *Rollups) {
	t.Helper()
	st := fsm.NewStore()
	cmds := []*statev1.Command{
		{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{Id: "c1", Name: "hello", Runtime: statev1.Runtime_RUNTIME_WASM, Spec: &statev1.ComponentSpec{ScaleMax: 1, Wasm: &statev1.WasmSpec{Module: "m.wasm"}}}}}},
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		cmds = append(cmds, &statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{Id: id, ApiAddr: id + ":7900", RaftAddr: id + ":7901"}}}})
	}
	for i, c := range cmds {
		c.Time = timestamppb.Now()
		if err := st.Apply(uint64(i+1), c); err != nil {
			t.Fatal(err)
		}
	}
	logs := logring.New(10)
	rollups, err := OpenRollups("", nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{NodeID: "n1", Store: st, Logs: logs, Rollups: rollups, Peers: peers}), logs, rollups
}

// Series sums this node's buckets with the peers' that answer, and names who answered.
func TestSeriesMergesNodes(t *testing.T) {
	s, _, stats := service(t, nil)
	stats.Record("hello", 200, 3*time.Millisecond)
	local, err := s.Series(context.Background(), &statsv1.SeriesRequest{Component: "hello", Local: true})
	if err != nil {
		t.Fatal(err)
	}
	b := busy(local)
	if b == nil || b.Requests != 1 {
		t.Fatalf("local series has no bucket with the request (%d buckets)", len(local.Buckets))
	}
	s.cfg.Peers = fakePeers{bucket: b.StartUnix}
	all, err := s.Series(context.Background(), &statsv1.SeriesRequest{Component: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if m := busy(all); !slices.Equal(all.Nodes, []string{"n1", "n2"}) || m == nil || m.Requests != 3 || m.Status_2Xx != 3 || m.LatencyMaxMs != 7 ||
		m.LatencyP50Ms <= 5 || m.LatencyP50Ms > 7 || m.LatencyP99Ms <= 5 || m.LatencyP99Ms > 7 {
		t.Fatalf("merged series: nodes %v, busy bucket %v", all.Nodes, m)
	}
	if _, err := s.Series(context.Background(), &statsv1.SeriesRequest{Component: "nope"}); err == nil {
		t.Fatal("series of an unknown component")
	}
}

// TailLogs merges the recent lines of every node that answers, oldest first.
func TestTailMergesNodes(t *testing.T) {
	s, logs, _ := service(t, fakePeers{})
	logs.Append("hello", "p1", "stdout", "from n1")
	var got []string
	err := s.TailLogs(context.Background(), &logsv1.TailRequest{Component: "hello"}, func(r *logsv1.TailResponse) error {
		for _, l := range r.Lines {
			got = append(got, l.NodeId+": "+l.Text)
		}
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"n2: from n2", "n1: from n1"}) {
		t.Fatalf("tail: %q %v", got, err)
	}
}

// busy returns the one bucket with requests, nil if none or several.
func busy(r *statsv1.SeriesResponse) *statsv1.Bucket {
	var out *statsv1.Bucket
	for _, b := range r.Buckets {
		if b.Requests > 0 {
			if out != nil {
				return nil
			}
			out = b
		}
	}
	return out
}
