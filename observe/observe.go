package observe

import (
	"context"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/logring"
	logsv1 "github.com/velocity9/v9/rpc/gen/v9/logs/v1"
	statsv1 "github.com/velocity9/v9/rpc/gen/v9/stats/v1"
)

// Peers reaches the same service on other nodes.
type Peers interface {
	// TailLogs asks the node at API address addr for its own lines (req.Local is set) and
	// calls emit with each batch until the stream, emit or ctx ends.
	TailLogs(ctx context.Context, addr string, req *logsv1.TailRequest, emit func(*logsv1.TailResponse) error) error
	// Series asks the node at addr for its own series (req.Local is set).
	Series(ctx context.Context, addr string, req *statsv1.SeriesRequest) (*statsv1.SeriesResponse, error)
}

// Config is what the service reads: this node's log ring and stats rollups, the local
// replica for the component and the nodes, and the peers.
type Config struct {
	NodeID string
	Store  *fsm.Store
	Logs   *logring.Ring
	// Rollups are this node's request statistics, which its proxy records into.
	Rollups *Rollups
	Peers   Peers
}

// Service answers LogService.Tail and StatsService.Series for one node.
type Service struct{ cfg Config }

// New returns the service.
func New(cfg Config) *Service { return &Service{cfg: cfg} }

func (s *Service) toProto(l logring.Line) *logsv1.LogLine {
	return &logsv1.LogLine{Time: timestamppb.New(l.Time), NodeId: s.cfg.NodeID, Component: l.Component,
		Instance: l.Instance, Stream: l.Stream, Text: l.Text, Seq: l.Seq}
}

// TailLogs sends a component's recent lines, merged by time across every node (or this
// node's only when req.Local), then with Follow the new lines as they come.
func (s *Service) TailLogs(ctx context.Context, req *logsv1.TailRequest, send func(*logsv1.TailResponse) error) error {
	lines := int(req.Lines)
	if lines <= 0 {
		lines = 100
	}
	if req.Local {
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
	if _, err := s.cfg.Store.Component(req.Component); err != nil {
		return err
	}
	// Fan out to every node, this one included, over the same API.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		node  string
		lines []*logsv1.LogLine
		first bool
	}
	ch := make(chan batch, 64)
	var wg sync.WaitGroup
	nodes := s.cfg.Store.Nodes()
	for _, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := &logsv1.TailRequest{Component: req.Component, Lines: uint32(lines), Follow: req.Follow, Local: true}
			first := true
			emit := func(r *logsv1.TailResponse) error {
				select {
				case ch <- batch{node: nd.Id, lines: r.Lines, first: first}:
				case <-ctx.Done():
					return ctx.Err()
				}
				first = false
				return nil
			}
			if nd.Id == s.cfg.NodeID {
				_ = s.TailLogs(ctx, sub, emit)
				return
			}
			_ = s.cfg.Peers.TailLogs(ctx, nd.ApiAddr, sub, emit)
		}()
	}
	go func() { wg.Wait(); close(ch) }()

	// First the recent lines of every node that answers within a moment, merged by time.
	var initial []*logsv1.LogLine
	pending := len(nodes)
	deadline := time.After(2 * time.Second)
	var early []batch
collect:
	for pending > 0 {
		select {
		case b, ok := <-ch:
			if !ok {
				break collect
			}
			if b.first {
				initial = append(initial, b.lines...)
				pending--
			} else {
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
		select {
		case <-ctx.Done():
			return nil
		case b, ok := <-ch:
			if !ok {
				return nil
			}
			if err := send(&logsv1.TailResponse{Lines: b.lines}); err != nil {
				return err
			}
		}
	}
}

// Series returns a component's request time series, summed over every node that answers
// (or this node's only with Local).
func (s *Service) Series(ctx context.Context, req *statsv1.SeriesRequest) (*statsv1.SeriesResponse, error) {
	minutes := int(req.Minutes)
	if minutes <= 0 {
		minutes = 60
	}
	minutes = min(minutes, 24*60)
	resp := &statsv1.SeriesResponse{Component: req.Component, BucketSeconds: uint32(Tiers[TierFor(minutes)].Seconds), LatencyBoundsMs: LatencyBoundsMs}
	if req.Local {
		_, buckets := s.cfg.Rollups.Series(req.Component, minutes)
		for _, b := range buckets {
			pb := &statsv1.Bucket{
				StartUnix: b.Start, Requests: b.Requests, Status_2Xx: b.Status[2], Status_3Xx: b.Status[3],
				Status_4Xx: b.Status[4], Status_5Xx: b.Status[5], LatencySumMs: b.LatencySumMs, LatencyMaxMs: b.LatencyMaxMs,
			}
			if b.Requests > 0 {
				pb.LatencyHistogram = b.Hist
				pb.LatencyP50Ms, pb.LatencyP99Ms = Percentile(b.Hist, 0.5, b.LatencyMaxMs), Percentile(b.Hist, 0.99, b.LatencyMaxMs)
			}
			resp.Buckets = append(resp.Buckets, pb)
		}
		resp.Nodes = []string{s.cfg.NodeID}
		return resp, nil
	}
	if _, err := s.cfg.Store.Component(req.Component); err != nil {
		return nil, err
	}
	sub := &statsv1.SeriesRequest{Component: req.Component, Minutes: uint32(minutes), Local: true}
	type result struct {
		r   *statsv1.SeriesResponse
		err error
	}
	nodes := s.cfg.Store.Nodes()
	results := make([]result, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if nd.Id == s.cfg.NodeID {
				results[i].r, results[i].err = s.Series(cctx, sub)
				return
			}
			results[i].r, results[i].err = s.cfg.Peers.Series(cctx, nd.ApiAddr, sub)
		}()
	}
	wg.Wait()
	byStart := map[int64]*statsv1.Bucket{}
	for _, res := range results {
		if res.err != nil || res.r == nil {
			continue
		}
		resp.Nodes = append(resp.Nodes, res.r.Nodes...)
		for _, b := range res.r.Buckets {
			acc := byStart[b.StartUnix]
			if acc == nil {
				acc = &statsv1.Bucket{StartUnix: b.StartUnix}
				byStart[b.StartUnix] = acc
			}
			acc.Requests += b.Requests
			acc.Status_2Xx += b.Status_2Xx
			acc.Status_3Xx += b.Status_3Xx
			acc.Status_4Xx += b.Status_4Xx
			acc.Status_5Xx += b.Status_5Xx
			acc.LatencySumMs += b.LatencySumMs
			acc.LatencyMaxMs = max(acc.LatencyMaxMs, b.LatencyMaxMs)
			// A peer with other histogram bounds (another version) adds no percentiles.
			if len(b.LatencyHistogram) == len(LatencyBoundsMs)+1 {
				if acc.LatencyHistogram == nil {
					acc.LatencyHistogram = make([]uint64, len(LatencyBoundsMs)+1)
				}
				for i, c := range b.LatencyHistogram {
					acc.LatencyHistogram[i] += c
				}
			}
		}
	}
	for _, b := range byStart {
		if b.LatencyHistogram != nil {
			b.LatencyP50Ms, b.LatencyP99Ms = Percentile(b.LatencyHistogram, 0.5, b.LatencyMaxMs), Percentile(b.LatencyHistogram, 0.99, b.LatencyMaxMs)
		}
		resp.Buckets = append(resp.Buckets, b)
	}
	sort.Slice(resp.Buckets, func(i, j int) bool { return resp.Buckets[i].StartUnix < resp.Buckets[j].StartUnix })
	sort.Strings(resp.Nodes)
	return resp, nil
}
