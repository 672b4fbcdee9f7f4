package leader

import (
	"context"
	"errors"
	"fmt"
	"github.com/velocity9/v9/internal/tick"
	"log/slog"
	"maps"
	"sync"
	"time"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// Errors Liveness.Record returns.
var (
	// ErrNotLeading: no term of leadership is established on this node.
	ErrNotLeading = errors.New("this node is not the leader")
	// ErrMarkingDown: the node is being marked down; its heartbeat is refused until the
	// decision is committed.
	ErrMarkingDown = errors.New("node is being marked down")
)

// LivenessStore is what Liveness reads and writes: the registered nodes, and node status
// changes committed only by this leader (never forwarded: a deposed leader's view of the
// heartbeats is stale).
type LivenessStore interface {
	Nodes() []*statev1.Node
	ApplyAsLeader(ctx context.Context, cmd *statev1.Command) (uint64, error)
}

// LivenessConfig is the heartbeat timing.
type LivenessConfig struct {
	Interval time.Duration // how often nodes heartbeat, and how often Liveness checks them
	TTL      time.Duration // a node silent this long is marked down
}

// Liveness is the leader's view of the nodes: when it last heard each one and what load and
// artifacts each reported. None of it enters the Raft log (only the decisions it leads to
// do). A term starts it afresh, counting every node as heard at the moment the term began,
// so no node is declared down before a full TTL under a new leader.
type Liveness struct {
	store LivenessStore
	cfg   LivenessConfig
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	since     time.Time            // start of the term; zero while none runs
	heard     map[string]time.Time // real heartbeats received in this term
	downing   map[string]bool      // nodes being marked down: their heartbeats are refused
	load      map[string][]*clusterv1.ComponentLoad
	artifacts map[string]map[string]bool
	versions  map[string][]*clusterv1.VersionCounts // by node: cumulative counts per deployment
}

// NewLiveness returns the liveness controller.
func NewLiveness(store LivenessStore, cfg LivenessConfig, log *slog.Logger) *Liveness {
	return &Liveness{store: store, cfg: cfg, log: log, now: time.Now}
}

// Name implements Controller.
func (l *Liveness) Name() string { return "liveness" }

// Run checks the nodes every interval for the term.
func (l *Liveness) Run(ctx context.Context) {
	l.reset(l.now())
	defer l.reset(time.Time{})
	tick.Every(ctx, l.cfg.Interval, func() { l.Check(ctx, l.now()) })
}

// reset starts a term at now (or ends it, with a zero time).
func (l *Liveness) reset(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since = now
	l.heard = map[string]time.Time{}
	l.downing = map[string]bool{}
	l.load = map[string][]*clusterv1.ComponentLoad{}
	l.artifacts = map[string]map[string]bool{}
	l.versions = map[string][]*clusterv1.VersionCounts{}
}

// Record takes a node's heartbeat. It fails with ErrNotLeading outside a term and with
// ErrMarkingDown while the node is being marked down.
func (l *Liveness) Record(req *clusterv1.HeartbeatRequest) error {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.since.IsZero() {
		return ErrNotLeading
	}
	if l.downing[req.NodeId] {
		// Answering now would renew the node's lease with a state that does not hold the
		// decision yet; once it is committed, the next heartbeat brings the node back.
		return fmt.Errorf("node %s: %w", req.NodeId, ErrMarkingDown)
	}
	l.heard[req.NodeId] = now
	l.load[req.NodeId] = req.Load
	if req.Versions != nil {
		l.versions[req.NodeId] = req.Versions
	}
	arts := make(map[string]bool, len(req.Artifacts))
	for _, a := range req.Artifacts {
		arts[a] = true
	}
	l.artifacts[req.NodeId] = arts
	return nil
}

// Fence refuses node id's heartbeats from now on and returns once it has been silent
// for longer than the TTL, so that its lease has surely run out and its exclusive
// instances are fenced: what removing a live node waits for before its placements are
// declared lost (tla/Placement.tla, LeaseOver). done lets its heartbeats in again.
func (l *Liveness) Fence(ctx context.Context, id string) (done func(), err error) {
	l.mu.Lock()
	if l.since.IsZero() {
		l.mu.Unlock()
		return nil, ErrNotLeading
	}
	l.downing[id] = true
	l.mu.Unlock()
	done = func() {
		l.mu.Lock()
		delete(l.downing, id)
		l.mu.Unlock()
	}
	for {
		l.mu.Lock()
		last, ok := l.heard[id]
		if !ok {
			last = l.since
		}
		wait := l.cfg.TTL - l.now().Sub(last)
		l.mu.Unlock()
		if wait < 0 {
			return done, nil
		}
		select {
		case <-ctx.Done():
			done()
			return nil, ctx.Err()
		case <-time.After(wait + time.Millisecond):
		}
	}
}

// markIfSilent decides, atomically with heartbeat intake, whether a node has been silent
// for longer than ttl; if so its heartbeats are refused until done is called.
func (l *Liveness) markIfSilent(id string, now time.Time) (done func(), silent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, ok := l.heard[id]
	if !ok {
		last = l.since
	}
	if l.since.IsZero() || now.Sub(last) <= l.cfg.TTL {
		return nil, false
	}
	l.downing[id] = true
	return func() {
		l.mu.Lock()
		delete(l.downing, id)
		l.mu.Unlock()
	}, true
}

// Since is when the term began (zero while none runs).
func (l *Liveness) Since() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.since
}

// LastHeard is when this term last heard the node (the term's start if never) and whether
// that was a real heartbeat.
func (l *Liveness) LastHeard(id string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.heard[id]; ok {
		return t, true
	}
	return l.since, false
}

// ArtifactHints returns what each node reported holding, for the scheduler.
func (l *Liveness) ArtifactHints() map[string]map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.artifacts) // the inner maps are replaced, never changed
}

// VersionCounts sums what every node's instances of each deployment answered, from each
// node's latest report (cumulative since the node started), for canary verdicts.
func (l *Liveness) VersionCounts() map[string]sched.Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]sched.Counts{}
	for _, vs := range l.versions {
		for _, v := range vs {
			out[v.DeploymentId] = out[v.DeploymentId].Add(sched.Counts{Requests: v.Requests, Errors: v.Errors})
		}
	}
	return out
}

// ComponentLoad sums the components' load over the latest report of each node heard within
// the TTL.
func (l *Liveness) ComponentLoad(now time.Time) map[string]sched.Load {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]sched.Load{}
	for id, reports := range l.load {
		if now.Sub(l.heard[id]) > l.cfg.TTL {
			continue
		}
		for _, r := range reports {
			s := out[r.Component]
			s.InFlight += float64(r.InFlight)
			s.Rate += r.Rate
			out[r.Component] = s
		}
	}
	return out
}

// Check marks a ready or draining node not heard for the TTL down (the fsm marks its
// placements lost, the scheduler replaces them), and a down node heard again ready.
func (l *Liveness) Check(ctx context.Context, now time.Time) {
	for _, nd := range l.store.Nodes() {
		var to statev1.NodeStatus
		var done func()
		switch {
		case nd.Status != statev1.NodeStatus_NODE_STATUS_DOWN:
			var silent bool
			if done, silent = l.markIfSilent(nd.Id, now); !silent {
				continue
			}
			to = statev1.NodeStatus_NODE_STATUS_DOWN
			l.log.Warn("node missed its heartbeats: marking it down", "peer", nd.Id, "ttl", l.cfg.TTL)
		default:
			last, real := l.LastHeard(nd.Id)
			if !real || now.Sub(last) > l.cfg.TTL {
				continue
			}
			to = statev1.NodeStatus_NODE_STATUS_READY
			if nd.Drain {
				to = statev1.NodeStatus_NODE_STATUS_DRAINING // the operator's drain still holds
			}
			l.log.Info("node is back", "peer", nd.Id, "status", to)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := l.store.ApplyAsLeader(cctx, &statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{Id: nd.Id, Status: to}}})
		cancel()
		if done != nil {
			done()
		}
		if err != nil {
			l.log.Warn("set node status", "peer", nd.Id, "status", to, "err", err)
		}
	}
}
