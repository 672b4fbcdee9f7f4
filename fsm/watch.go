package fsm

import (
	"context"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Table names one table of the state, for blocking queries: a write moves the index of the
// tables it changed and wakes only the queries that watch one of them.
type Table uint8

// The tables.
const (
	TableComponents Table = iota
	TableDeployments
	TableNodes
	TablePlacements
	TableUsers
	TableTokens
	TableLinks
	numTables
)

var tableNames = [numTables]string{"components", "deployments", "nodes", "placements", "users", "tokens", "links"}

func (t Table) String() string {
	if t < numTables {
		return tableNames[t]
	}
	return "unknown"
}

// tableSet is a set of tables, one bit each.
type tableSet uint32

const allTables tableSet = 1<<numTables - 1

func setOf(ts ...Table) tableSet {
	var s tableSet
	for _, t := range ts {
		s |= 1 << t
	}
	return s
}

// TablesOf lists the tables cmd may change. It errs on the side of more: a command of a
// kind it does not know may change every table.
func TablesOf(cmd *statev1.Command) []Table {
	var out []Table
	s := tablesOf(cmd)
	for t := range numTables {
		if s&(1<<t) != 0 {
			out = append(out, t)
		}
	}
	return out
}

func tablesOf(cmd *statev1.Command) tableSet {
	switch cmd.GetOp().(type) {
	case *statev1.Command_CreateComponent, *statev1.Command_UpdateComponentSpec,
		*statev1.Command_SetComponentDesired, *statev1.Command_ScaleComponent,
		*statev1.Command_PutSecret, *statev1.Command_DeleteSecret, // secrets move the component's secrets_index
		*statev1.Command_FailSpecRoll:
		return setOf(TableComponents)
	case *statev1.Command_DeleteComponent:
		return setOf(TableComponents, TableDeployments, TablePlacements, TableLinks)
	case *statev1.Command_CreateLinkedComponent:
		return setOf(TableComponents, TableLinks, TableDeployments)
	case *statev1.Command_RegisterNode:
		return setOf(TableNodes)
	case *statev1.Command_SetNodeStatus, *statev1.Command_RemoveNode:
		return setOf(TableNodes, TablePlacements) // a node down or removed loses its placements
	case *statev1.Command_CreateDeployment, *statev1.Command_EndCanary, *statev1.Command_StartCanary:
		return setOf(TableDeployments)
	case *statev1.Command_SetDeploymentStatus, *statev1.Command_ActivateDeployment:
		return setOf(TableDeployments, TableComponents) // ready may activate; activation changes the component
	case *statev1.Command_SetPlacementObserved:
		return setOf(TablePlacements, TableDeployments) // the first RUNNING marks its deployment served
	case *statev1.Command_PutPlacements, *statev1.Command_DeletePlacements:
		return setOf(TablePlacements)
	case *statev1.Command_CreateUser:
		return setOf(TableUsers)
	case *statev1.Command_CreateApiToken, *statev1.Command_DeleteApiToken, *statev1.Command_AclBootstrap,
		*statev1.Command_RevokeApiToken, *statev1.Command_TouchApiTokens, *statev1.Command_DeleteGithubBinding:
		return setOf(TableTokens) // GitHub login bindings count as the tokens' table
	case *statev1.Command_PutGithubLink, *statev1.Command_DeleteGithubLink:
		return setOf(TableLinks)
	}
	return allTables
}

// waiter is one blocking query: woken when a table of tables moves past min, or, with no
// tables, when the store's index reaches min.
type waiter struct {
	tables tableSet
	min    uint64
	ch     chan struct{}
}

// TableIndex is the highest index at which one of the tables changed (the store's index
// when no table is given).
func (st *Store) TableIndex(tables ...Table) uint64 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.tableIndexLocked(setOf(tables...))
}

func (st *Store) tableIndexLocked(s tableSet) uint64 {
	if s == 0 {
		return st.s.index
	}
	var idx uint64
	for t := range numTables {
		if s&(1<<t) != 0 {
			idx = max(idx, st.tableIdx[t])
		}
	}
	return idx
}

// WaitTables is the blocking query (Nomad's state.BlockingQuery): it returns once one of
// the tables has changed at an index above min, with the tables' index, or when ctx ends,
// with the index reached and ctx's error. A write to other tables does not wake it. No
// tables means any table.
// Watchers loop: idx := TableIndex(ts...); read; idx, err = WaitTables(ctx, idx, ts...).
func (st *Store) WaitTables(ctx context.Context, min uint64, tables ...Table) (uint64, error) {
	return st.wait(ctx, newWaiter(min, tables))
}

// WatchTables is WaitTables for a select: the channel is closed once one of the tables has
// changed above min. Call stop when done waiting.
func (st *Store) WatchTables(min uint64, tables ...Table) (ch <-chan struct{}, stop func()) {
	w := newWaiter(min, tables)
	if !st.register(w) {
		return closedCh, func() {}
	}
	return w.ch, func() { st.unregister(w) }
}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newWaiter(min uint64, tables []Table) *waiter {
	s := setOf(tables...)
	if s == 0 {
		s = allTables
	}
	return &waiter{tables: s, min: min}
}

// register adds w unless it is satisfied already (then it returns false).
func (st *Store) register(w *waiter) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.reachedLocked(w) > 0 {
		return false
	}
	w.ch = make(chan struct{})
	st.waiters[w] = struct{}{}
	return true
}

func (st *Store) unregister(w *waiter) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.waiters, w)
}

func (st *Store) wait(ctx context.Context, w *waiter) (uint64, error) {
	// Most waits are satisfied already (a writer waiting for its own write on the leader):
	// they take the read lock only.
	st.mu.RLock()
	if idx := st.reachedLocked(w); idx > 0 {
		st.mu.RUnlock()
		return idx, nil
	}
	st.mu.RUnlock()
	if st.register(w) {
		select {
		case <-w.ch:
		case <-ctx.Done():
			st.unregister(w)
			st.mu.RLock()
			defer st.mu.RUnlock()
			return st.reachedOrIndexLocked(w), ctx.Err()
		}
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.reachedOrIndexLocked(w), nil
}

// reachedLocked returns the index that satisfies w, or 0 when w must wait.
func (st *Store) reachedLocked(w *waiter) uint64 {
	if w.tables == 0 {
		if st.s.index >= w.min {
			return st.s.index
		}
		return 0
	}
	if idx := st.tableIndexLocked(w.tables); idx > w.min {
		return idx
	}
	return 0
}

func (st *Store) reachedOrIndexLocked(w *waiter) uint64 {
	if w.tables == 0 {
		return st.s.index
	}
	return st.tableIndexLocked(w.tables)
}

// markLocked records that tables changed at index; wakeLocked then wakes the waiters.
func (st *Store) markLocked(changed tableSet, index uint64) {
	for t := range numTables {
		if changed&(1<<t) != 0 {
			st.tableIdx[t] = index
		}
	}
}

// wakeLocked wakes the waiters that the store's indexes now satisfy.
func (st *Store) wakeLocked() {
	for w := range st.waiters {
		if st.reachedLocked(w) > 0 {
			close(w.ch)
			delete(st.waiters, w)
			st.woken.Add(1)
		}
	}
}

// Wakeups counts the watchers woken by writes so far: blocking queries satisfied, and every
// taker of a Changed channel when it closes. Tests and benchmarks measure with it.
func (st *Store) Wakeups() uint64 { return st.woken.Load() }
