package replica

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/fsm"
)

// Group commit. The leader's writes that fsm.BatchKey lets share an entry are committed
// through one Raft entry at a time: a write that finds none in flight commits at once,
// alone (no timer, no added latency when idle); writes that arrive while one is in flight
// queue, and when it commits, the queue becomes the next entry (fsm.EncodeBatch): the
// goroutine that saw the commit answers the entry's other writers, then hands the queue to
// Raft itself (no goroutine woken in between), and the first queued writer's goroutine
// waits for it. Answering comes first because the hand-over can wait: Raft's apply channel
// has no buffer, and its leader loop takes it only between log writes. Each write gets its
// own result or error, as if applied alone. Two writes with one key never share an entry: the later waits for the next.
// Forwarded writes from followers arrive here too (ApplyResultAsLeader). Raft's per-entry
// costs (log encoding, the log store, replication, FSM dispatch on every node) are paid once
// per batch.

// maxInFlight is how many entries of the group may be in flight at once: a write that finds
// fewer commits at once, alone. Raft's cost is mostly per round (a log store transaction and
// fsync, an AppendEntries on each follower), so fewer, larger entries cost less CPU; one in
// flight leaves the commit pipeline idle while the answer travels back. Measured with
// BenchmarkWriteThroughput (three runs each, shared machine): v9/raw 0.60 with one, 0.68
// with two, 0.48 with four, 0.50 without group commit.
const maxInFlight = 2

// maxBatchBytes bounds the commands' bytes in one batch entry.
const maxBatchBytes = 1 << 20

// group is the leader's queue of writes waiting for the entry in flight.
type group struct {
	mu       sync.Mutex
	queue    []*proposal
	inflight int // entries of the group in flight, at most maxInFlight
}

// proposal is one write waiting to be committed in a batch.
type proposal struct {
	ctx  context.Context
	key  string // fsm.BatchKey
	data []byte // fsm.EncodeCommand
	done chan struct{}
	lead *entry // set before done closes when this proposal's goroutine answers the next entry
	res  *fsm.Result
	err  error
}

// entry is one batch handed to Raft: the proposals taken together (batch[0] is the
// proposal whose goroutine waits for it and answers them all), the ones still wanted when
// it was sent, and Raft's future (nil when none was).
type entry struct {
	batch, live []*proposal
	fut         raft.ApplyFuture
}

// applyGrouped commits an encoded command with key through the group, as applyLocal would.
func (r *Replica) applyGrouped(ctx context.Context, key string, data []byte) (*fsm.Result, error) {
	p := &proposal{ctx: ctx, key: key, data: data, done: make(chan struct{})}
	g := &r.group
	g.mu.Lock()
	if g.inflight < maxInFlight {
		g.inflight++
		g.mu.Unlock()
		r.finish(r.send([]*proposal{p}))
		return p.res, p.err
	}
	g.queue = append(g.queue, p)
	g.mu.Unlock()
	<-p.done
	if p.lead != nil {
		r.finish(p.lead)
	}
	return p.res, p.err
}

// send hands batch to Raft as one entry (a plain one when alone), leaving out the
// proposals whose callers gave up while they queued: those are never sent.
func (r *Replica) send(batch []*proposal) *entry {
	e := &entry{batch: batch, live: make([]*proposal, 0, len(batch))}
	var timeout time.Duration
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.err = connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("%s: %w", NotApplied, err))
			continue
		}
		e.live = append(e.live, p)
		timeout = max(timeout, timeoutFor(p.ctx, DefaultWriteTimeout, time.Millisecond))
	}
	if len(e.live) == 0 {
		return e
	}
	if r.onSend != nil {
		r.onSend()
	}
	r.waiting.Add(1) // until finish has the future's answer
	switch len(e.live) {
	case 1:
		e.fut = r.Raft.Apply(e.live[0].data, timeout)
	default:
		cmds := make([][]byte, len(e.live))
		for i, p := range e.live {
			cmds[i] = p.data
		}
		e.fut = r.Raft.Apply(fsm.EncodeBatch(cmds), timeout)
	}
	return e
}

// finish waits for e to commit and answers its proposals (the calling goroutine's own,
// e.batch[0], once finish returns); then it sends the batch queued meanwhile, if any, and
// hands that entry to its first proposal's goroutine. Sending may wait for Raft's leader
// loop, which must not hold the writers already committed.
func (r *Replica) finish(e *entry) {
	var err error
	if e.fut != nil {
		err = e.fut.Error()
		r.waiting.Add(-1)
	}
	g := &r.group
	g.mu.Lock()
	batch := g.take()
	if batch == nil {
		g.inflight--
	}
	g.mu.Unlock()
	if e.fut != nil {
		answer(e.live, e.fut, err)
	}
	for _, p := range e.batch[1:] {
		close(p.done)
	}
	if batch != nil {
		next := r.send(batch)
		batch[0].lead = next
		close(batch[0].done)
	}
}

// answer sets each proposal's result from the entry's outcome (err is the future's error).
func answer(live []*proposal, f raft.ApplyFuture, err error) {
	if err != nil {
		err = commitError(err)
		for _, p := range live {
			p.err = err
		}
		return
	}
	switch resp := f.Response().(type) {
	case []*fsm.Result:
		if len(resp) == len(live) {
			for i, p := range live {
				p.res, p.err = result(resp[i])
			}
			return
		}
	case *fsm.Result: // a plain entry, or a batch that did not decode (its error for all)
		if len(live) == 1 || resp.Err != nil {
			for _, p := range live {
				p.res, p.err = result(resp)
			}
			return
		}
	}
	err = connect.NewError(connect.CodeInternal, fmt.Errorf("unexpected apply response %T for %d commands", f.Response(), len(live)))
	for _, p := range live {
		p.err = err
	}
}

// result turns the FSM's result of one command into what the writer gets: a domain error
// is returned as the error.
func result(res *fsm.Result) (*fsm.Result, error) {
	if res == nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("no apply result"))
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res, nil
}

// take removes from the queue the next batch: queued proposals in order, skipping those
// whose key is already in it, up to fsm.MaxBatch commands and maxBatchBytes. Nil when the
// queue is empty. The caller holds the lock.
func (g *group) take() []*proposal {
	if len(g.queue) == 0 {
		return nil
	}
	var batch, rest []*proposal
	keys := make(map[string]bool, len(g.queue))
	size := 0
	for _, p := range g.queue {
		if keys[p.key] || len(batch) == fsm.MaxBatch || (len(batch) > 0 && size+len(p.data) > maxBatchBytes) {
			rest = append(rest, p)
			continue
		}
		keys[p.key] = true
		size += len(p.data)
		batch = append(batch, p)
	}
	g.queue = rest
	return batch
}
