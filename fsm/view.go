package fsm

import (
	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// View is read access to the live state without copies, for hot readers that derive their
// own small structures from it (the proxy's routing table is rebuilt at every change on
// every node; a deep copy of the whole state each time costs more than the writes). The
// objects it hands out belong to the store: a reader must not change them, keep them, or
// use them after its View callback returns.
type View struct {
	t  *tables
	st *Store
}

// View calls f with the state under the read lock. f must not call the Store.
func (st *Store) View(f func(View)) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	f(View{st.s, st})
}

// Index is the index of the last applied entry.
func (v View) Index() uint64 { return v.t.index }

// TableIndex is the highest index at which one of the tables changed (the state's index
// when no table is given).
func (v View) TableIndex(tables ...Table) uint64 { return v.st.tableIndexLocked(setOf(tables...)) }

// Epoch changes whenever the whole state is replaced (a snapshot restored): what a reader
// derived from an earlier epoch must be derived again from scratch.
func (v View) Epoch() uint64 { return v.t.epoch }

// Component returns the component with id, nil if there is none.
func (v View) Component(id string) *statev1.Component { return v.t.components[id] }

// TouchedSince calls fn with the id of each component that a change above idx touched: its
// row, or one of its deployments or placements, changed, appeared or went away. A component
// may be named more than once. It reports false, having called fn for none, when changes
// that old are no longer remembered (derive everything again then). Readers that derive
// structures per component (the proxy's routes, the leader's plan) derive again only what
// it names, at a cost that grows with the changes, not with the state.
func (v View) TouchedSince(idx uint64, fn func(componentID string)) bool {
	return v.t.touched.since(idx, fn)
}

// NumComponents is the number of components, for callers that size what they build.
func (v View) NumComponents() int { return len(v.t.components) }

// Components calls fn for each component, in no particular order.
func (v View) Components(fn func(*statev1.Component)) {
	for _, c := range v.t.components {
		fn(c)
	}
}

// Nodes calls fn for each node, in no particular order.
func (v View) Nodes(fn func(*statev1.Node)) {
	for _, n := range v.t.nodes {
		fn(n)
	}
}

// Deployments calls fn for each deployment, in no particular order.
func (v View) Deployments(fn func(*statev1.Deployment)) {
	for _, d := range v.t.deployments {
		fn(d)
	}
}

// Deployment returns the deployment with id, nil if there is none.
func (v View) Deployment(id string) *statev1.Deployment { return v.t.deployments[id] }

// Placements calls fn for each placement, in no particular order.
func (v View) Placements(fn func(*statev1.Placement)) {
	for _, p := range v.t.placements {
		fn(p)
	}
}

// Secrets calls fn for each secret (sealed, as the state holds it), in no particular order.
func (v View) Secrets(fn func(*statev1.Secret)) {
	for _, s := range v.t.secrets {
		fn(s)
	}
}

// ViewState calls f with the whole state, lists sorted by id as State returns them, but
// holding the store's own objects instead of copies, under the read lock: for the leader's
// scheduler, a pure function that only reads. The View rules apply, and f must be quick:
// writes wait for it.
func (st *Store) ViewState(f func(*statev1.State)) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	f(st.s.exportWith(func(m proto.Message) proto.Message { return m }))
}
