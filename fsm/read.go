package fsm

import (
	"sort"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Component returns a copy of the component called name.
func (st *Store) Component(name string) (*statev1.Component, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	id, ok := st.s.byName[name]
	if !ok {
		return nil, notFound("component", name)
	}
	return clone(st.s.components[id]), nil
}

// Components returns copies of all components, sorted by name.
func (st *Store) Components() []*statev1.Component {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]*statev1.Component, 0, len(st.s.byName))
	for _, name := range sortedKeys(st.s.byName) {
		out = append(out, clone(st.s.components[st.s.byName[name]]))
	}
	return out
}

// Node returns a copy of the node with id.
func (st *Store) Node(id string) (*statev1.Node, error) {
	return one(st, "node", id, func(t *tables) map[string]*statev1.Node { return t.nodes })
}

// Nodes returns copies of all nodes, sorted by id.
func (st *Store) Nodes() []*statev1.Node {
	return all(st, func(t *tables) map[string]*statev1.Node { return t.nodes }, nil)
}

// Deployments returns copies of a component's deployments, oldest first.
func (st *Store) Deployments(componentID string) []*statev1.Deployment {
	out := all(st, func(t *tables) map[string]*statev1.Deployment { return t.deployments },
		func(d *statev1.Deployment) bool { return d.ComponentId == componentID })
	sortByIndex(out)
	return out
}

// Placements returns copies of the placements on a node ("" for every node), sorted by id.
func (st *Store) Placements(nodeID string) []*statev1.Placement {
	return all(st, func(t *tables) map[string]*statev1.Placement { return t.placements },
		func(p *statev1.Placement) bool { return nodeID == "" || p.NodeId == nodeID })
}

// GithubLink returns the link of a component, secret included: for the webhook verifier
// only, never for a read API.
func (st *Store) GithubLink(componentID string) (*statev1.GithubLink, error) {
	return one(st, "github link", componentID, func(t *tables) map[string]*statev1.GithubLink { return t.links })
}

// TokenBySHA256 finds the API token whose secret hashes to sum.
func (st *Store) TokenBySHA256(sum []byte) (*statev1.ApiToken, error) {
	var k *statev1.ApiToken
	if !st.ReadTokenBySHA256(sum, func(t *statev1.ApiToken) { k = clone(t) }) {
		return nil, notFound("token", "")
	}
	return k, nil
}

// ReadTokenBySHA256 calls f with the API token whose secret hashes to sum, without copying
// it, under the read lock, and reports whether there is one: the check of every API call
// reads a few fields of it. f must not change or keep the token, nor call the Store.
func (st *Store) ReadTokenBySHA256(sum []byte, f func(*statev1.ApiToken)) bool {
	st.mu.RLock()
	defer st.mu.RUnlock()
	id, ok := st.s.tokenByHash[string(sum)]
	if ok {
		f(st.s.tokens[id])
	}
	return ok
}

// Token returns a copy of the token with accessor id (its hash included: never for a read
// API as it is).
func (st *Store) Token(id string) (*statev1.ApiToken, error) {
	return one(st, "token", id, func(t *tables) map[string]*statev1.ApiToken { return t.tokens })
}

// Tokens returns copies of every token, sorted by accessor id.
func (st *Store) Tokens() []*statev1.ApiToken {
	return all(st, func(t *tables) map[string]*statev1.ApiToken { return t.tokens }, nil)
}

// ACLBootstrapped reports whether the first management token was created.
func (st *Store) ACLBootstrapped() bool {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.s.aclBootstrapped
}

// Audit returns copies of the last limit audit entries (all kept when limit is 0), oldest
// first.
func (st *Store) Audit(limit int) []*statev1.AuditEntry {
	st.mu.RLock()
	defer st.mu.RUnlock()
	es := st.s.audits()
	if limit > 0 && len(es) > limit {
		es = es[len(es)-limit:]
	}
	out := make([]*statev1.AuditEntry, 0, len(es))
	for _, e := range es {
		out = append(out, clone(e))
	}
	return out
}

func sortByIndex(ds []*statev1.Deployment) {
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].CreateIndex < ds[j].CreateIndex })
}

// ComponentByID returns a copy of the component with id.
func (st *Store) ComponentByID(id string) (*statev1.Component, error) {
	return one(st, "component id", id, func(t *tables) map[string]*statev1.Component { return t.components })
}

// Deployment returns a copy of the deployment with id.
func (st *Store) Deployment(id string) (*statev1.Deployment, error) {
	return one(st, "deployment", id, func(t *tables) map[string]*statev1.Deployment { return t.deployments })
}

// GithubLinks returns copies of every GitHub link, secrets included, sorted by component
// id: for the webhook verifier and the leader's loops only, never for a read API.
func (st *Store) GithubLinks() []*statev1.GithubLink {
	return all(st, func(t *tables) map[string]*statev1.GithubLink { return t.links }, nil)
}

// one returns a copy of the row with key id of a table (named kind in the not-found error).
func one[T proto.Message](st *Store, kind, id string, table func(*tables) map[string]T) (T, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	row, ok := table(st.s)[id]
	if !ok {
		var none T
		return none, notFound(kind, id)
	}
	return clone(row), nil
}

// all returns copies of a table's rows that keep accepts (nil: every row), sorted by key.
func all[T proto.Message](st *Store, table func(*tables) map[string]T, keep func(T) bool) []T {
	st.mu.RLock()
	defer st.mu.RUnlock()
	rows := table(st.s)
	out := make([]T, 0, len(rows))
	for _, k := range sortedKeys(rows) {
		if keep == nil || keep(rows[k]) {
			out = append(out, clone(rows[k]))
		}
	}
	return out
}
