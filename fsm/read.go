package fsm

import (
	"sort"

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
	st.mu.RLock()
	defer st.mu.RUnlock()
	n, ok := st.s.nodes[id]
	if !ok {
		return nil, notFound("node", id)
	}
	return clone(n), nil
}

// Nodes returns copies of all nodes, sorted by id.
func (st *Store) Nodes() []*statev1.Node {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]*statev1.Node, 0, len(st.s.nodes))
	for _, id := range sortedKeys(st.s.nodes) {
		out = append(out, clone(st.s.nodes[id]))
	}
	return out
}

// Deployments returns copies of a component's deployments, oldest first.
func (st *Store) Deployments(componentID string) []*statev1.Deployment {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var out []*statev1.Deployment
	for _, id := range sortedKeys(st.s.deployments) {
		if d := st.s.deployments[id]; d.ComponentId == componentID {
			out = append(out, clone(d))
		}
	}
	sortByIndex(out)
	return out
}

// Placements returns copies of the placements on a node ("" for every node), sorted by id.
func (st *Store) Placements(nodeID string) []*statev1.Placement {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var out []*statev1.Placement
	for _, id := range sortedKeys(st.s.placements) {
		if p := st.s.placements[id]; nodeID == "" || p.NodeId == nodeID {
			out = append(out, clone(p))
		}
	}
	return out
}

// GithubLink returns the link of a component, secret included: for the webhook verifier
// only, never for a read API.
func (st *Store) GithubLink(componentID string) (*statev1.GithubLink, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	l, ok := st.s.links[componentID]
	if !ok {
		return nil, notFound("github link", componentID)
	}
	return clone(l), nil
}

// TokenBySHA256 finds the API token whose secret hashes to sum.
func (st *Store) TokenBySHA256(sum []byte) (*statev1.ApiToken, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if id, ok := st.s.tokenByHash[string(sum)]; ok {
		return clone(st.s.tokens[id]), nil
	}
	return nil, notFound("token", "")
}

// Token returns a copy of the token with accessor id (its hash included: never for a read
// API as it is).
func (st *Store) Token(id string) (*statev1.ApiToken, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	k, ok := st.s.tokens[id]
	if !ok {
		return nil, notFound("token", id)
	}
	return clone(k), nil
}

// Tokens returns copies of every token, sorted by accessor id.
func (st *Store) Tokens() []*statev1.ApiToken {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]*statev1.ApiToken, 0, len(st.s.tokens))
	for _, id := range sortedKeys(st.s.tokens) {
		out = append(out, clone(st.s.tokens[id]))
	}
	return out
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
	es := st.s.auditLog
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
	st.mu.RLock()
	defer st.mu.RUnlock()
	c, ok := st.s.components[id]
	if !ok {
		return nil, notFound("component id", id)
	}
	return clone(c), nil
}

// Deployment returns a copy of the deployment with id.
func (st *Store) Deployment(id string) (*statev1.Deployment, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	d, ok := st.s.deployments[id]
	if !ok {
		return nil, notFound("deployment", id)
	}
	return clone(d), nil
}

// GithubLinks returns copies of every GitHub link, secrets included, sorted by component
// id: for the webhook verifier and the leader's loops only, never for a read API.
func (st *Store) GithubLinks() []*statev1.GithubLink {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]*statev1.GithubLink, 0, len(st.s.links))
	for _, id := range sortedKeys(st.s.links) {
		out = append(out, clone(st.s.links[id]))
	}
	return out
}
