package dataplane

import (
	"cmp"
	"context"
	"hash/fnv"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/tick"
	"github.com/velocity9/v9/proxy"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
	v9spec "github.com/velocity9/v9/spec"
)

// router is the proxy's view of where components run: an immutable snapshot, swapped
// atomically when the local replica or this node's instances change, so that a request
// takes no lock, scans nothing and copies nothing. Because it reads only the local
// replica, the proxy keeps routing with the last known snapshot while the cluster has no
// leader.
type router struct {
	dp   *DataPlane
	snap atomic.Pointer[snapshot] // what requests read

	// Writers (the rebuild loop and the reconciler) combine their halves under mu. The
	// reconciler holds its own lock when it takes mu; the loop never takes the
	// reconciler's, so the order is always reconciler, then router.
	mu    sync.Mutex
	base  *builtFrom                 // what state was derived from
	state map[string]*route          // from the replica, by component name
	local map[string][]localInstance // this node's routable instances, by component name
	od    map[string]http.Handler    // on-demand handlers by component name (kept across rebuilds)
	ods   map[string]*onDemandTarget // what on-demand starts need, by component name
}

// snapshot is one immutable routing table. Nothing in it changes after it is stored.
type snapshot struct {
	targets map[string]*proxy.Target // by component name
	// recent holds targets newer than those in targets (nil: the component is gone): a
	// rebuild copies the few it changed, not every target, and folds them into a new
	// targets map once they grow past an eighth of it (recentShare).
	recent   map[string]*proxy.Target
	onDemand map[string]*onDemandTarget
	// starting: the data plane has no view of the state yet (no persisted view, replica
	// not caught up): a component it does not know may exist, so it is not "not found".
	starting bool
	// refuse, when set, answers every request: this node was removed from the cluster.
	refuse string
}

// starting answers for a component the node cannot know yet.
var starting = proxy.Target{Unavailable: "node starting: it has not learned the cluster's components yet"}

// route is the part of a component's routing that comes from the replicated state.
type route struct {
	paused bool
	rt     statev1.Runtime
	active string   // the active deployment
	canary uint32   // the active deployment's share of requests while in its canary, else 0
	remote []string // proxy addresses of other nodes running an instance
	older  []string // the same, for older deployments
	// olderSup: the same, for older deployments superseded during their canary (never
	// proved): they serve only when no other older version runs (sched.BetterFallback).
	olderSup   []string
	failed     map[string]bool // deployments failed: their instances never serve, even here
	superseded map[string]bool // deployments superseded during their canary
	onDemand   http.Handler    // serve here when no instance is reachable (ondemand.go)
	relay      string          // a container at zero this node cannot start: the node that starts it
	maxBody    int64           // limits.body (0: the proxy's default)
	conc       int             // limits.concurrency (0: the proxy's default)
}

// onDemandTarget is what an on-demand start needs of a component, taken from the state at
// the last rebuild.
type onDemandTarget struct {
	id, name string
	rt       statev1.Runtime
	// candidates are the deployments to try: the active one, then older ready ones still
	// placed (a rollout under way), newest first; while the active one has not served, the
	// newest older one that served comes first (unprovedLast).
	candidates []string
}

// localInstance is one of this node's routable instances.
type localInstance struct {
	id, deployment string
	handler        http.Handler
}

var _ proxy.Router = (*router)(nil)

// Lookup is the proxy's per-request read: one atomic load and one map read.
func (r *router) Lookup(name string) proxy.Target {
	s := r.snap.Load()
	if s == nil {
		return starting
	}
	if s.refuse != "" {
		return proxy.Target{Unavailable: s.refuse}
	}
	t, ok := s.target(name)
	if !ok {
		if s.starting {
			return starting
		}
		return proxy.Target{}
	}
	return *t
}

// target is the component's target in s: the recent one, else the one in targets.
func (s *snapshot) target(name string) (*proxy.Target, bool) {
	if t, ok := s.recent[name]; ok {
		return t, t != nil
	}
	t, ok := s.targets[name]
	return t, ok
}

// onDemand returns what an on-demand start of a component needs, nil if unknown.
func (r *router) onDemand(name string) *onDemandTarget {
	if s := r.snap.Load(); s != nil {
		return s.onDemand[name]
	}
	return nil
}

// setLocal takes this node's routable instances from the reconciler and publishes the
// routes of the components whose instances changed.
func (r *router) setLocal(m map[string][]localInstance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var changed []string
	for name, ins := range m {
		if !sameInstances(ins, r.local[name]) {
			changed = append(changed, name)
		}
	}
	for name := range r.local {
		if _, ok := m[name]; !ok {
			changed = append(changed, name)
		}
	}
	r.local = m
	if r.snap.Load() == nil {
		r.publishLocked()
	} else if len(changed) > 0 {
		r.republishLocked(changed)
	}
}

func sameInstances(a, b []localInstance) bool {
	return slices.EqualFunc(a, b, func(x, y localInstance) bool { return x.id == y.id && x.deployment == y.deployment })
}

// publishLocked combines every route with the local instances into a new snapshot.
func (r *router) publishLocked() {
	targets := make(map[string]*proxy.Target, len(r.state))
	for name := range r.state {
		targets[name] = r.targetLocked(name)
	}
	r.storeLocked(targets, nil)
}

// recentMin and recentShare bound a snapshot's recent targets: past max(recentMin, an
// eighth of its targets) they are folded into a new targets map. A rebuild then costs the
// targets it changed and a copy of the recent ones, not a copy of every target.
const (
	recentMin   = 64
	recentShare = 8
)

// republishLocked publishes a snapshot in which only the named components' targets are
// made again; the others are shared with the previous snapshot (targets never change once
// published).
func (r *router) republishLocked(names []string) {
	prev := r.snap.Load()
	if prev == nil {
		r.publishLocked()
		return
	}
	targets, recent := prev.targets, prev.recent
	if len(names) > 0 {
		recent = make(map[string]*proxy.Target, len(prev.recent)+len(names))
		maps.Copy(recent, prev.recent)
		for _, name := range names {
			recent[name] = r.targetLocked(name) // nil: gone
		}
		if len(recent) > max(recentMin, len(targets)/recentShare) {
			targets = maps.Clone(targets)
			for name, tg := range recent {
				if tg != nil {
					targets[name] = tg
				} else {
					delete(targets, name)
				}
			}
			recent = nil
		}
	}
	r.storeLocked(targets, recent)
}

func (r *router) storeLocked(targets, recent map[string]*proxy.Target) {
	s := &snapshot{targets: targets, recent: recent, onDemand: r.ods, starting: !r.dp.src.hasView()}
	if why := r.dp.removed.Load(); why != nil {
		s.refuse = *why
	}
	r.snap.Store(s)
}

// targetLocked is what the proxy gets for a component: its route from the state and this
// node's instances of it; nil for a component the state does not hold.
func (r *router) targetLocked(name string) *proxy.Target {
	rt := r.state[name]
	if rt == nil {
		return nil
	}
	tg := &proxy.Target{Found: true, Paused: rt.paused, Remote: rt.remote, OnDemand: rt.onDemand, MaxBody: rt.maxBody, Concurrency: rt.conc}
	cur, old, oldSup := splitLocal(r.local[name], rt.active, rt.failed, rt.superseded)
	older := rt.older
	if len(old)+len(older) == 0 {
		old, older = oldSup, rt.olderSup
	}
	if len(tg.Remote) == 0 {
		// Once the active deployment runs somewhere, older ones get no more traffic.
		tg.Remote = older
	}
	if len(tg.Remote) == 0 && rt.relay != "" {
		tg.Remote = []string{rt.relay}
	}
	if !rt.paused {
		tg.Local = cur
		if len(cur) == 0 {
			tg.Local = old
		}
		tg.InProcess = rt.rt == statev1.Runtime_RUNTIME_WASM
		if rt.canary > 0 && len(old)+len(older) > 0 {
			// In its canary: the older versions keep the traffic the canary does not get.
			tg.Local, tg.Remote = old, older
			tg.Canary = &proxy.Canary{Percent: rt.canary, Local: cur, Remote: rt.remote}
		}
	}
	return tg
}

// splitLocal splits this node's instances into the active deployment's and the others (an
// older version still serving during a rollout). Outside a canary the active ones serve
// when there are any, so that once the new version answers here the old one never does
// again.
func splitLocal(ins []localInstance, active string, failed, superseded map[string]bool) (cur, old, oldSup []http.Handler) {
	for _, in := range ins {
		switch {
		case in.deployment == active:
			cur = append(cur, in.handler)
		case failed[in.deployment]: // a failed version (a failed canary) never answers again
		case superseded[in.deployment]:
			oldSup = append(oldSup, in.handler)
		default:
			old = append(old, in.handler)
		}
	}
	return cur, old, oldSup
}

// routePause is the least time between two rebuilds of the routing table.
const routePause = 20 * time.Millisecond

func (r *router) loop(ctx context.Context) {
	for {
		st := r.dp.state() // watch the store read: the view wakes its waiters when left
		idx := st.TableIndex(routeTables...)
		t0 := time.Now()
		r.rebuild()
		// A rebuild reads the whole state under the store's read lock: under a burst of
		// writes, one per routePause, and never more than a fifth of the time, so that a
		// large state does not starve the writes (and their FSM applies) it locks out.
		if !tick.Sleep(ctx, tick.Pause(routePause, time.Since(t0))) {
			return
		}
		if _, err := st.WaitTables(ctx, idx, routeTables...); err != nil {
			return
		}
	}
}

// routeTables are the tables the routes derive from; users, tokens and links do not wake
// the router.
var routeTables = []fsm.Table{fsm.TableComponents, fsm.TableDeployments, fsm.TableNodes, fsm.TablePlacements}

// rebuild derives the routes from the replica and publishes them. After the first build
// it derives again only the components a change touched since (their own row, a
// deployment or a placement of theirs carries a newer modify_index, or lost a row): a
// write costs the proxy's table what it changed, not the size of the state. It derives
// everything again when the nodes changed (proxy addresses and down nodes touch every
// route), when the state was replaced, or when it switched stores.
func (r *router) rebuild() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.od == nil {
		r.od = map[string]http.Handler{}
	}
	st := r.dp.state()
	var changed []string // names whose routes changed; nil: all
	st.View(func(v fsm.View) {
		b := r.base
		if b == nil || b.store != st || b.epoch != v.Epoch() || b.nodes != v.TableIndex(fsm.TableNodes) {
			r.deriveAll(st, v)
			return
		}
		dirty := map[string]bool{}
		if !v.TouchedSince(b.index, func(id string) { dirty[id] = true }) {
			r.deriveAll(st, v)
			return
		}
		changed = r.deriveSome(v, dirty)
		b.index = v.Index()
	})
	if changed == nil {
		r.publishLocked()
	} else {
		r.republishLocked(changed) // with none changed, still the node's flags (starting, removed)
	}
}

// builtFrom is what the routes were derived from, to tell what a later change touched.
type builtFrom struct {
	store        *fsm.Store
	epoch        uint64
	index, nodes uint64            // the state's and the nodes table's index then
	proxyOf      map[string]string // proxy address of every other node up, by id
	names        map[string]string // component id -> name, of the routes derived
	// containers: the other nodes up, not draining, that run containers (relayTo).
	containers []*statev1.Node
}

// deriveAll derives every route from scratch.
func (r *router) deriveAll(st *fsm.Store, v fsm.View) {
	b := &builtFrom{store: st, epoch: v.Epoch(), index: v.Index(), nodes: v.TableIndex(fsm.TableNodes),
		proxyOf: map[string]string{}, names: make(map[string]string, v.NumComponents())}
	self := r.dp.cfg.NodeID
	v.Nodes(func(nd *statev1.Node) {
		if nd.Id != self && nd.Status != statev1.NodeStatus_NODE_STATUS_DOWN && nd.ProxyAddr != "" {
			b.proxyOf[nd.Id] = nd.ProxyAddr
			if !nd.Drain && slices.Contains(nd.Runtimes, statev1.Runtime_RUNTIME_CONTAINER) {
				b.containers = append(b.containers, nd)
			}
		}
	})
	r.base = b
	state, ods := make(map[string]*route, v.NumComponents()), map[string]*onDemandTarget{}
	r.derive(v, nil, state, ods)
	for name := range r.od {
		if state[name] == nil {
			delete(r.od, name)
		}
	}
	r.state, r.ods = state, ods
}

// deriveSome derives again the routes of the components with the given ids, in place in
// the routes (only the router reads them, under mu) and into a copy of the on-demand map (a
// published snapshot holds the old one), and returns the names changed.
func (r *router) deriveSome(v fsm.View, dirty map[string]bool) []string {
	if len(dirty) == 0 {
		return []string{}
	}
	b := r.base
	state, ods := r.state, maps.Clone(r.ods)
	var names []string
	for id := range dirty {
		if name, ok := b.names[id]; ok { // drop what the component had; derive puts back what it has
			delete(state, name)
			delete(ods, name)
			delete(b.names, id)
			names = append(names, name)
		}
	}
	names = append(names, r.derive(v, dirty, state, ods)...)
	for _, name := range names {
		if state[name] == nil {
			delete(r.od, name)
		}
	}
	r.state, r.ods = state, ods
	return names
}

// derive puts into state and ods the routes of the components with the given ids (nil:
// all) and returns their names.
func (r *router) derive(v fsm.View, only map[string]bool, state map[string]*route, ods map[string]*onDemandTarget) []string {
	b := r.base
	byID := map[string]*route{}
	odByID := map[string]*onDemandTarget{}
	var names []string
	add := func(c *statev1.Component) {
		rt := &route{paused: c.Desired == statev1.DesiredState_DESIRED_STATE_PAUSED, rt: c.Runtime, active: c.ActiveDeploymentId,
			maxBody: int64(min(c.GetSpec().GetBodyBytes(), v9spec.MaxBody)), conc: int(c.GetSpec().GetConcurrency())}
		if d := v.Deployment(c.ActiveDeploymentId); d != nil && d.Canary {
			rt.canary, _ = v9spec.Canary(c.Spec)
		}
		if r.dp.od.serves(c) {
			rt.onDemand = r.od[c.Name] // never for exclusive: that would be a second instance
			if rt.onDemand == nil {
				rt.onDemand = r.dp.od.handler(c.Name)
				r.od[c.Name] = rt.onDemand
			}
			od := &onDemandTarget{id: c.Id, name: c.Name, rt: c.Runtime, candidates: []string{c.ActiveDeploymentId}}
			ods[c.Name], odByID[c.Id] = od, od
		} else if onDemandContainer(c) {
			rt.relay = relayTo(b.containers, c.Id)
		}
		byID[c.Id], state[c.Name], b.names[c.Id] = rt, rt, c.Name
		names = append(names, c.Name)
	}
	if only == nil {
		v.Components(add)
	} else {
		for id := range only {
			if c := v.Component(id); c != nil {
				add(c)
			}
		}
	}
	if len(byID) == 0 {
		return names
	}
	placed := map[string]bool{} // deployments of on-demand components still desired to run
	v.Placements(func(p *statev1.Placement) {
		rt := byID[p.ComponentId]
		if rt == nil || p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
			return
		}
		if od := odByID[p.ComponentId]; od != nil && p.DeploymentId != rt.active {
			placed[p.DeploymentId] = true
		}
		if d := v.Deployment(p.DeploymentId); d != nil && d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
			if rt.failed == nil {
				rt.failed = map[string]bool{}
			}
			rt.failed[p.DeploymentId] = true
			return
		}
		sup := false
		if d := v.Deployment(p.DeploymentId); d != nil && d.CanarySuperseded && p.DeploymentId != rt.active {
			if rt.superseded == nil {
				rt.superseded = map[string]bool{}
			}
			rt.superseded[p.DeploymentId], sup = true, true // this node's instances too
		}
		addr := b.proxyOf[p.NodeId]
		if addr == "" || p.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
			return
		}
		switch {
		case p.DeploymentId == rt.active:
			rt.remote = append(rt.remote, addr)
		case sup:
			rt.olderSup = append(rt.olderSup, addr)
		default:
			rt.older = append(rt.older, addr)
		}
	})
	// On demand falls back to older ready deployments still placed, newest first.
	var older []*statev1.Deployment
	for id := range placed {
		if d := v.Deployment(id); d != nil && d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY && odByID[d.ComponentId] != nil {
			older = append(older, d)
		}
	}
	slices.SortFunc(older, func(a, b *statev1.Deployment) int {
		return cmp.Or(cmp.Compare(b.CreateIndex, a.CreateIndex), strings.Compare(b.Id, a.Id))
	})
	for _, d := range older {
		od := odByID[d.ComponentId]
		od.candidates = append(od.candidates, d.Id)
	}
	unprovedLast(v, odByID)
	for _, rt := range byID {
		slices.Sort(rt.remote) // a stable order for round robin
		slices.Sort(rt.older)
		slices.Sort(rt.olderSup)
	}
	return names
}

// onDemandContainer reports whether a container component may start on demand somewhere:
// it may scale to zero, has an active deployment and is not exclusive.
func onDemandContainer(c *statev1.Component) bool {
	return c.Runtime == statev1.Runtime_RUNTIME_CONTAINER && c.ActiveDeploymentId != "" &&
		c.GetSpec().GetScaleMin() == 0 && !c.GetSpec().GetExclusive()
}

// relayTo picks, for a container component at zero that this node cannot start (it runs
// no containers), the node whose proxy starts it on demand: the same on every node
// (rendezvous hashing of the component id over the nodes that run containers), so that one
// container starts, not one per entry node; a node joining or leaving moves few components.
func relayTo(nodes []*statev1.Node, componentID string) string {
	var best *statev1.Node
	var top uint64
	for _, n := range nodes {
		h := fnv.New64a()
		h.Write([]byte(componentID))
		h.Write([]byte{0})
		h.Write([]byte(n.Id))
		if w := h.Sum64(); best == nil || w > top || w == top && n.Id < best.Id {
			best, top = n, w
		}
	}
	if best == nil {
		return ""
	}
	return best.ProxyAddr
}

// unprovedLast puts first, for each on-demand component whose active deployment has not
// served yet (its readiness probe has not run, sched.Schedule), the newest older version
// that served: no on-demand request reaches the unproved version, which is tried only if
// the older one cannot start. The route depends only on deployment rows of the component,
// whose modify_index touches it (fsm.View.TouchedSince).
func unprovedLast(v fsm.View, odByID map[string]*onDemandTarget) {
	fallback := map[string]*statev1.Deployment{} // by component id
	for id, od := range odByID {
		if d := v.Deployment(od.candidates[0]); d != nil && !d.Served {
			fallback[id] = nil
		}
	}
	if len(fallback) == 0 {
		return
	}
	v.Deployments(func(d *statev1.Deployment) {
		if last, ok := fallback[d.ComponentId]; ok && sched.BetterFallback(d, last, d.ComponentId, odByID[d.ComponentId].candidates[0]) {
			fallback[d.ComponentId] = d
		}
	})
	for id, d := range fallback {
		if d == nil {
			continue
		}
		od := odByID[id]
		od.candidates = append([]string{d.Id}, slices.DeleteFunc(od.candidates, func(c string) bool { return c == d.Id })...)
	}
}
