package leader

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/tick"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// ScheduleStore is what the Scheduler reads and writes.
type ScheduleStore interface {
	// ViewState calls f with the live state under the store's read lock; f must not keep
	// or change it.
	ViewState(f func(*statev1.State))
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
// Scheduling is idempotent, so a plan applied once yields an empty plan next time; the
// scheduler keeps no soft state.
type Scheduler struct {
	store ScheduleStore
	hints ArtifactHinter
	log   *slog.Logger
	hold  atomic.Bool
	// planTook is how long the last plan read the state (ns); Run spaces passes by it.
	planTook atomic.Int64
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
	var plan sched.Plan
	// The scheduler only reads, and its plan holds objects of its own: it runs on the live
	// state under the read lock instead of on a deep copy per pass.
	t0 := time.Now()
	s.store.ViewState(func(st *statev1.State) { plan = sched.ScheduleWith(st, h) })
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
