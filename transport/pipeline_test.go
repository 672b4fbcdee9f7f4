package transport

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// newTestTransport is a plain-TCP Raft transport on 127.0.0.1.
func newTestTransport(t *testing.T) *NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := NewNetworkTransport(&raft.NetworkTransportConfig{
		Stream:  &StreamLayer{Listener: ln, Advertise: ln.Addr(), F: &Faults{}},
		MaxPool: 2,
		Timeout: 10 * time.Second,
		Logger:  hclog.NewNullLogger(),
	})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestPipelineSendsWhileNobodyReadsAnswers is the wedge Raft's replication hit when a
// follower refused an append (or showed a newer term) with another one in flight: Raft's
// answer reader left, its sender sent again and, with hashicorp/raft's own pipeline, waited
// for ever (and Raft's Shutdown with it). Every send must return while nobody reads the
// answers, and the answers must all come out afterwards, in order.
func TestPipelineSendsWhileNobodyReadsAnswers(t *testing.T) {
	leader, follower := newTestTransport(t), newTestTransport(t)
	go func() { // the follower refuses every append
		for rpc := range follower.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: false}, nil)
		}
	}()
	p, err := leader.AppendEntriesPipeline("f", follower.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	var sent []*raft.AppendEntriesRequest
	for i := range 4 {
		req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("l"), Addr: []byte("l")}, Term: 1, PrevLogEntry: uint64(i)}
		done := make(chan error, 1)
		go func() {
			_, err := p.AppendEntries(req, &raft.AppendEntriesResponse{})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("append %d still waits after 20s while nobody reads the answers: the pipeline wedged", i)
		}
		sent = append(sent, req)
	}
	for i, req := range sent {
		select {
		case f := <-p.Consumer():
			if f.Request() != req {
				t.Fatalf("answer %d is for request %d", i, f.Request().PrevLogEntry)
			}
			if err := f.Error(); err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
			if f.Response().Success {
				t.Fatalf("answer %d: success, want the follower's refusal", i)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("answer %d never came", i)
		}
	}
}
