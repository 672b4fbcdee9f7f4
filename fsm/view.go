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
type View struct{ t *tables }

// View calls f with the state under the read lock. f must not call the Store.
func (st *Store) View(f func(View)) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	f(View{st.s})
}

// Index is the index of the last applied entry.
func (v View) Index() uint64 { return v.t.index }

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

// ViewState calls f with the whole state, lists sorted by id as State returns them, but
// holding the store's own objects instead of copies, under the read lock: for the leader's
// scheduler, a pure function that only reads. The View rules apply, and f must be quick:
// writes wait for it.
func (st *Store) ViewState(f func(*statev1.State)) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	f(st.s.exportWith(func(m proto.Message) proto.Message { return m }))
}
