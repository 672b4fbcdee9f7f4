package observe

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/logring"
	logsv1 "github.com/velocity9/v9/rpc/gen/v9/logs/v1"
)

// Retry pacing of a follow tail's part on one node whose stream ended (the node restarted,
// or could not be reached): first retryMin, doubling up to retryMax.
const (
	retryMin = 200 * time.Millisecond
	retryMax = 5 * time.Second
)

func (s *Service) toProto(l logring.Line) *logsv1.LogLine {
	return &logsv1.LogLine{Time: timestamppb.New(l.Time), NodeId: s.cfg.NodeID, Component: l.Component,
		Instance: l.Instance, Stream: l.Stream, Text: l.Text, Seq: l.Seq}
}

// TailLogs sends a component's recent lines, merged by time across every node (or this
// node's only when req.Local), then with Follow the new lines as they come: a node whose
// stream ends (it restarted) is asked again until it answers, nodes that join are followed
// too, and the tail ends with a NotFound error once the component is deleted.
func (s *Service) TailLogs(ctx context.Context, req *logsv1.TailRequest, send func(*logsv1.TailResponse) error) error {
	lines := int(req.Lines)
	if lines <= 0 {
		lines = 100
	}
	if req.Local {
		return s.tailLocal(ctx, req, lines, send)
	}
	comp, err := s.cfg.Store.Component(req.Component)
	if err != nil {
		return err
	}
	// Fan out to every node, this one included, over the same API.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan nodeBatch, 64)
	sub := &logsv1.TailRequest{Component: req.Component, Lines: uint32(lines), Follow: req.Follow, Local: true}
	following := map[string]bool{}
	follow := func() {
		for _, nd := range s.cfg.Store.Nodes() {
			if !following[nd.Id] {
				following[nd.Id] = true
				wg.Add(1)
				go func() { defer wg.Done(); s.tailNode(ctx, nd.Id, sub, ch) }()
			}
		}
	}
	watchIdx := s.cfg.Store.TableIndex(fsm.TableComponents, fsm.TableNodes)
	follow()

	// First the recent lines of every node that answers within a moment, merged by time.
	var initial []*logsv1.LogLine
	pending := len(following)
	deadline := time.After(2 * time.Second)
	var early []nodeBatch
collect:
	for pending > 0 {
		select {
		case b := <-ch:
			switch {
			case b.done:
				pending--
			case b.first:
				initial = append(initial, b.lines...)
				pending--
			default:
				early = append(early, b)
			}
		case <-deadline:
			break collect
		case <-ctx.Done():
			return nil
		}
	}
	sort.SliceStable(initial, func(i, j int) bool { return initial[i].Time.AsTime().Before(initial[j].Time.AsTime()) })
	if len(initial) > lines {
		initial = initial[len(initial)-lines:]
	}
	if err := send(&logsv1.TailResponse{Lines: initial}); err != nil {
		return err
	}
	if !req.Follow {
		return nil
	}
	for _, b := range early {
		if err := send(&logsv1.TailResponse{Lines: b.lines}); err != nil {
			return err
		}
	}
	for {
		changed, stop := s.cfg.Store.WatchTables(watchIdx, fsm.TableComponents, fsm.TableNodes)
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-s.cfg.Stopping:
			stop()
			return errStopping
		case b := <-ch:
			stop()
			if len(b.lines) > 0 {
				if err := send(&logsv1.TailResponse{Lines: b.lines}); err != nil {
					return err
				}
			}
		case <-changed:
			stop()
			watchIdx = s.cfg.Store.TableIndex(fsm.TableComponents, fsm.TableNodes)
			if c, err := s.cfg.Store.Component(req.Component); err != nil || c.Id != comp.Id {
				return fmt.Errorf("component %q was deleted: %w", req.Component, fsm.ErrNotFound)
			}
			follow()
		}
	}
}

// errStopping ends the follow tails of a node that stops.
var errStopping = connect.NewError(connect.CodeUnavailable, errors.New("this node is stopping: follow the logs through another node, or again once it is back"))

// nodeBatch is a batch of one node's lines; first marks the first batch of its tail (its
// recent lines), done a node whose first attempt ended before it sent any.
type nodeBatch struct {
	lines []*logsv1.LogLine
	first bool
	done  bool
}

// tailNode sends node id's lines to ch. With Follow it asks again, paced, whenever the
// node's stream ends, until ctx ends or the node leaves the cluster; lines it already sent
// (a stream that broke without a restart answers its recent lines again) are skipped.
func (s *Service) tailNode(ctx context.Context, id string, req *logsv1.TailRequest, ch chan<- nodeBatch) {
	first := true
	var last *logsv1.LogLine // the newest line sent
	emit := func(r *logsv1.TailResponse) error {
		out := r.Lines
		if last != nil {
			out = out[:0:0]
			for _, l := range r.Lines {
				if after(l, last) {
					out = append(out, l)
				}
			}
		}
		for _, l := range out {
			if last == nil || after(l, last) {
				last = l
			}
		}
		select {
		case ch <- nodeBatch{lines: out, first: first}:
		case <-ctx.Done():
			return ctx.Err()
		}
		first = false
		return nil
	}
	wait := retryMin
	for {
		began := time.Now()
		nd, left := s.cfg.Store.Node(id) // left: the node left the cluster
		switch {
		case left != nil:
		case id == s.cfg.NodeID:
			_ = s.TailLogs(ctx, req, emit)
		default:
			_ = s.cfg.Peers.TailLogs(ctx, nd.ApiAddr, req, emit)
		}
		if first {
			// No answer: the tail's first batch does not wait for this node.
			first = false
			select {
			case ch <- nodeBatch{done: true}:
			case <-ctx.Done():
			}
		}
		if left != nil || !req.Follow || ctx.Err() != nil {
			break
		}
		if time.Since(began) > retryMax {
			wait = retryMin // it answered a while: a new outage starts the pacing again
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// after says whether line a is newer than line b of the same node: later, or as late with
// a higher sequence number (a node's numbers start again at 1 when it restarts).
func after(a, b *logsv1.LogLine) bool {
	at, bt := a.GetTime().AsTime(), b.GetTime().AsTime()
	return at.After(bt) || at.Equal(bt) && a.Seq > b.Seq
}

// tailLocal sends this node's recent lines of the component, then with Follow its new ones.
func (s *Service) tailLocal(ctx context.Context, req *logsv1.TailRequest, lines int, send func(*logsv1.TailResponse) error) error {
	var sub *logring.Sub
	if req.Follow {
		sub = s.cfg.Logs.Subscribe(req.Component) // before Recent: no line falls between
		defer sub.Close()
	}
	resp := &logsv1.TailResponse{}
	for _, l := range s.cfg.Logs.Recent(req.Component, lines) {
		resp.Lines = append(resp.Lines, s.toProto(l))
	}
	if err := send(resp); err != nil || sub == nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.cfg.Stopping:
			return errStopping
		case l := <-sub.C:
			batch := &logsv1.TailResponse{Lines: []*logsv1.LogLine{s.toProto(l)}}
			for more := true; more && len(batch.Lines) < 256; {
				select {
				case l := <-sub.C:
					batch.Lines = append(batch.Lines, s.toProto(l))
				default:
					more = false
				}
			}
			if err := send(batch); err != nil {
				return err
			}
		}
	}
}
