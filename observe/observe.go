package observe

import (
	"context"
	"sort"
	"sync"
	"time"

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
	// Stopping is closed when the node begins to stop: follow tails end then (Unavailable,
	// which clients retry, elsewhere or once it is back) instead of holding its shutdown.
	Stopping <-chan struct{}
}

// Service answers LogService.Tail and StatsService.Series for one node.
type Service struct{ cfg Config }

// New returns the service.
func New(cfg Config) *Service { return &Service{cfg: cfg} }

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
