package transport

import (
	"sync"

	"github.com/hashicorp/raft"
)

// NetworkTransport is hashicorp/raft's NetworkTransport with replication pipelines that
// cannot wedge. Its netPipeline (v1.7.3, v1.8.0) hands each sent request to its response
// reader, and each answered one to Raft's consumer, over unbuffered channels (at the
// default two requests in flight). When Raft's consumer stops reading (a follower answered
// with a newer term or a refusal) while one more request is in flight and Raft's sender
// sends one more, the reader waits on the consumer and the sender on the reader, for ever:
// the pipeline's Close, which would free both, is deferred in that sender. The leader's
// replication to that peer then stalls and Raft's Shutdown never returns
// (hashicorp/raft#612; grafana/pyroscope#5518 turned pipelining off instead).
//
// Here every pipeline's answered requests are taken off at once and queued until Raft
// reads them, so the response reader never waits on Raft and the sender waits at most one
// response (bounded by the transport's Timeout).
type NetworkTransport struct {
	*raft.NetworkTransport
}

// NewNetworkTransport returns a NetworkTransport built from cfg.
func NewNetworkTransport(cfg *raft.NetworkTransportConfig) *NetworkTransport {
	return &NetworkTransport{raft.NewNetworkTransportWithConfig(cfg)}
}

// AppendEntriesPipeline returns the transport's pipeline to target, its answers decoupled.
func (t *NetworkTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return decouple(p), nil
}

// pipeline queues an AppendPipeline's answered requests until its consumer reads them.
type pipeline struct {
	raft.AppendPipeline
	out  chan raft.AppendFuture
	stop chan struct{}
	once sync.Once
}

func decouple(p raft.AppendPipeline) *pipeline {
	q := &pipeline{AppendPipeline: p, out: make(chan raft.AppendFuture), stop: make(chan struct{})}
	go q.forward()
	return q
}

// forward moves answers from the inner pipeline to out, in order, until Close. The queue
// holds only requests already answered: at most the few sent after the consumer left
// (Raft's sender stops once it sees its consumer gone), else none for long.
func (q *pipeline) forward() {
	in := q.AppendPipeline.Consumer()
	var queue []raft.AppendFuture
	for {
		var out chan raft.AppendFuture
		var next raft.AppendFuture
		if len(queue) > 0 {
			out, next = q.out, queue[0]
		}
		select {
		case f := <-in:
			queue = append(queue, f)
		case out <- next:
			queue[0] = nil
			queue = queue[1:]
		case <-q.stop:
			return
		}
	}
}

// Consumer returns the answered requests, in the order they were sent.
func (q *pipeline) Consumer() <-chan raft.AppendFuture { return q.out }

// Close closes the inner pipeline and stops forwarding.
func (q *pipeline) Close() error {
	err := q.AppendPipeline.Close()
	q.once.Do(func() { close(q.stop) })
	return err
}
