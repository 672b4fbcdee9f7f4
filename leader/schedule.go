package leader

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/tick"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// ScheduleStore is what the Scheduler reads and writes.
type ScheduleStore interface {
	// View calls f with the live state under the store's read lock (fsm.Store.View); f
	// must not keep or change what it reads.
	View(f func(fsm.View))
	// TableIndex and WaitTables are the store's blocking query (fsm.Store).
	TableIndex(tables ...fsm.Table) uint64
	WaitTables(ctx context.Context, min uint64, tables ...fsm.Table) (uint64, error)
	Apply(ctx context.Context, cmd *statev1.Command) (uint64, error)
}

// ArtifactHinter tells which nodes hold which artifacts (Liveness does, from heartbeats).
type ArtifactHinter interface {
	ArtifactHints() map[string]map[string]bool
}

// schedulePause is the least time between two scheduling passes: a burst of writes is
// planned together, in few Raft entries, instead of one full pass per write.
const schedulePause = 20 * time.Millisecond

// Scheduler runs sched.ScheduleWith after every change of the state and commits its plan.
// Scheduling is idempotent, so a plan applied once yields an empty plan next time. Its only
// soft state is what its last pass planned from (planBase), dropped at every term's start:
// a pass plans again only the components a change touched since, which gives the plan of a
// full pass (see plan).
type Scheduler struct {
	store ScheduleStore
	hints ArtifactHinter
	log   *slog.Logger
	hold  atomic.Bool
	// planTook is how long the last plan read the state (ns); Run spaces passes by it.
	planTook atomic.Int64

	mu   sync.Mutex // one pass at a time
	base *planBase  // nil: the next pass plans every component
}

// planBase is what the last pass planned from.
type planBase struct {
	epoch, index, nodes uint64 // the state's epoch, index and nodes table index then
	// pending are the components whose last plan was not empty (being committed, or its
	// commit failed): they are planned again whether or not a change touched them.
	pending map[string]bool
}

// NewScheduler returns the scheduling controller.
func NewScheduler(store ScheduleStore, hints ArtifactHinter, log *slog.Logger) *Scheduler {
	return &Scheduler{store: store, hints: hints, log: log}
}

// Hold pauses (true) or resumes scheduling passes; benchmarks time one pass alone with it.
func (s *Scheduler) Hold(on bool) { s.hold.Store(on) }

// Name implements Controller.
func (s *Scheduler) Name() string { return "schedule" }

// scheduleTables are the tables a plan depends on; writes to others do not wake the
// scheduler.
var scheduleTables = []fsm.Table{fsm.TableComponents, fsm.TableDeployments, fsm.TableNodes, fsm.TablePlacements}

// Run schedules after every change of the tables it reads, and at least once a second (the
// artifact hints come from heartbeats, not from the state).
func (s *Scheduler) Run(ctx context.Context) {
	s.mu.Lock()
	s.base = nil // a new term plans everything
	s.mu.Unlock()
	for {
		idx := s.store.TableIndex(scheduleTables...)
		if !s.hold.Load() {
			s.Pass(ctx)
		}
		// Planning reads the whole state under the read lock: a large state spaces passes out.
		if !tick.Sleep(ctx, tick.Pause(schedulePause, time.Duration(s.planTook.Load()))) {
			return
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = s.store.WaitTables(wctx, idx, scheduleTables...)
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// Pass plans once and commits the plan.
func (s *Scheduler) Pass(ctx context.Context) {
	var h sched.Hints
	if s.hints != nil {
		h.Artifacts = s.hints.ArtifactHints()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var plan sched.Plan
	// The scheduler only reads, and its plan holds objects of its own: it runs on the live
	// state under the read lock instead of on a deep copy per pass.
	t0 := time.Now()
	s.store.View(func(v fsm.View) { plan = s.plan(v, h) })
	s.planTook.Store(int64(time.Since(t0)))
	if plan.Empty() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if len(plan.Put) > 0 {
		if _, err := s.store.Apply(cctx, &statev1.Command{Op: &statev1.Command_PutPlacements{PutPlacements: &statev1.PutPlacements{Placements: plan.Put}}}); err != nil {
			s.log.Warn("commit placements", "err", err)
			return
		}
	}
	if len(plan.Delete) > 0 {
		if _, err := s.store.Apply(cctx, &statev1.Command{Op: &statev1.Command_DeletePlacements{DeletePlacements: &statev1.DeletePlacements{Ids: plan.Delete}}}); err != nil {
			s.log.Warn("delete placements", "err", err)
		}
	}
}

// plan computes the plan of a full pass, sched.ScheduleWith over the whole state, while
// planning only the components that may have a non-empty plan. A component's plan depends
// on its own row, its active deployment, its placements, the nodes, the hints and the load
// of every placement; the load and the hints only matter when its plan places or stops
// something, and a component changes the load only together with its plan. So a
// component whose last plan was empty, and that no change touched since (fsm's
// View.TouchedSince), has an empty plan again and changes nothing for the others: planning
// the touched and pending components, in id order over all the placements, gives the
// plan of the full pass. A change of the nodes, a restored state or a new term plans
// everything. TestSchedulerIncrementalMatchesFullPass checks this after every write of
// random histories.
func (s *Scheduler) plan(v fsm.View, h sched.Hints) sched.Plan {
	var only map[string]bool // nil: every component
	if b := s.base; b != nil && b.epoch == v.Epoch() && b.nodes == v.TableIndex(fsm.TableNodes) {
		only = b.pending
		if !v.TouchedSince(b.index, func(id string) { only[id] = true }) {
			only = nil
		}
	}
	st := scheduleState(v, only)
	plan := sched.ScheduleWith(st, h)
	b := &planBase{epoch: v.Epoch(), index: v.Index(), nodes: v.TableIndex(fsm.TableNodes), pending: map[string]bool{}}
	for _, p := range plan.Put {
		b.pending[p.ComponentId] = true
	}
	if len(plan.Delete) > 0 {
		owner := make(map[string]string, len(st.Placements))
		for _, p := range st.Placements {
			owner[p.Id] = p.ComponentId
		}
		for _, id := range plan.Delete {
			b.pending[owner[id]] = true
		}
	}
	s.base = b
	return plan
}

// scheduleState is the part of the state a plan of the components in only (nil: all)
// reads, as sched.ScheduleWith reads it: the nodes and those components sorted by id,
// their active deployments, and every placement, theirs first sorted by id (the others
// count only in the load, where order does not matter).
func scheduleState(v fsm.View, only map[string]bool) *statev1.State {
	st := &statev1.State{Index: v.Index()}
	v.Nodes(func(n *statev1.Node) { st.Nodes = append(st.Nodes, n) })
	if only == nil {
		v.Components(func(c *statev1.Component) { st.Components = append(st.Components, c) })
	} else {
		for id := range only {
			if c := v.Component(id); c != nil {
				st.Components = append(st.Components, c)
			}
		}
	}
	var others []*statev1.Placement
	v.Placements(func(p *statev1.Placement) {
		if only == nil || only[p.ComponentId] {
			st.Placements = append(st.Placements, p)
		} else {
			others = append(others, p)
		}
	})
	byID := func(a, b interface{ GetId() string }) int { return strings.Compare(a.GetId(), b.GetId()) }
	slices.SortFunc(st.Nodes, func(a, b *statev1.Node) int { return byID(a, b) })
	slices.SortFunc(st.Components, func(a, b *statev1.Component) int { return byID(a, b) })
	slices.SortFunc(st.Placements, func(a, b *statev1.Placement) int { return byID(a, b) })
	st.Placements = append(st.Placements, others...)
	for _, c := range st.Components {
		if d := v.Deployment(c.ActiveDeploymentId); d != nil {
			st.Deployments = append(st.Deployments, d)
		}
	}
	return st
}
