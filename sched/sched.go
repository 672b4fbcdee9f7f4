// Package sched decides where components run. Schedule is a pure function of the replicated
// state: no I/O, no clock, no randomness, so the same state always yields the same plan and
// the leader can run it after every change. The leader commits the plan; nodes act on it.
//
// Vocabulary (shared with tla/ and the reconciler): a Placement is desired RUN or STOP on
// one node; nodes report what they observe (STARTING, RUNNING, FAILED, STOPPED, LOST).
package sched

import (
	"fmt"
	"slices"
	"sort"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Plan is what the leader should commit: placements to create or change, ids to delete.
type Plan struct {
	Put    []*statev1.Placement
	Delete []string
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Put) == 0 && len(p.Delete) == 0 }

const (
	run     = statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	stop    = statev1.PlacementDesired_PLACEMENT_DESIRED_STOP
	running = statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING
	lost    = statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST
)

// Hints are soft facts the leader knows beyond the replicated state. They only break ties:
// the plan stays correct without them.
type Hints struct {
	// Artifacts lists, per node id, the artifact digests the node holds: a node that has a
	// deployment's artifact starts it without fetching it first (cold-start aware).
	Artifacts map[string]map[string]bool
}

// Schedule computes the plan for the whole state:
//   - a running component with an active deployment gets `replicas` placements of it (one,
//     a readiness probe, while it is scaled to zero and the deployment never served), spread
//     one per eligible node first (ready, able to run its runtime), then doubling up, and
//     preferring nodes that hold its artifact;
//   - placements of older deployments or made for an older spec (spec_index: env, secrets,
//     limits changed), and those on draining nodes, stop only as replacements run: a rollout or a drain never drops a component below the instances
//     it had (new first, old stopped after); while the active deployment is in its canary,
//     the older ones keep all their instances;
//   - an exclusive component is never placed while another of its placements may still run:
//     the old one is stopped first and a new one placed once it is observed stopped or lost;
//   - a paused component, or one without an active deployment, has every placement stopped;
//   - placements that are lost or on nodes that are down or unable to run them are stopped
//     and replaced elsewhere; those on nodes removed from the state are deleted (no write
//     may name a removed node) and replaced;
//   - a placement whose starts failed RescheduleAfter times in a row on its node is
//     stopped and replaced on another node that can run it (none where the component keeps
//     failing), the replacement inheriting the count; with no such node it stays;
//   - a scale-down stops the placements that do not serve (failed, starting) first;
//   - stopped placements that the node reports stopped (or lost) are deleted.
func Schedule(s *statev1.State) Plan { return ScheduleWith(s, Hints{}) }

// ScheduleWith is Schedule with hints.
func ScheduleWith(s *statev1.State, h Hints) Plan {
	var plan Plan
	nodes := map[string]*statev1.Node{}
	for _, n := range s.Nodes {
		nodes[n.Id] = n
	}
	byComp := map[string][]*statev1.Placement{}
	load := map[string]int{} // placements wanted running per node, all components
	for _, p := range s.Placements {
		byComp[p.ComponentId] = append(byComp[p.ComponentId], p)
		if p.Desired == run {
			load[p.NodeId]++
		}
	}
	deps := map[string]*statev1.Deployment{}
	for _, d := range s.Deployments {
		deps[d.Id] = d
	}
	for _, c := range s.Components { // sorted by id: deterministic
		scheduleComponent(&plan, c, deps[c.ActiveDeploymentId], byComp[c.Id], s.Nodes, nodes, load, h)
	}
	// Placements whose component is gone are deleted by fsm with the component; placements on
	// removed nodes are collected here.
	for _, p := range s.Placements {
		if _, ok := nodes[p.NodeId]; !ok && !slices.Contains(plan.Delete, p.Id) {
			plan.Delete = append(plan.Delete, p.Id)
		}
	}
	sort.Strings(plan.Delete)
	return plan
}

// Wanted is how many instances of deployment d component c wants running: its replicas,
// or, scaled to zero while d never served, one. Served on demand, a new deployment would
// get no readiness check: that one instance (a readiness probe) proves it first, then the
// component goes back to zero. A rollout, `v9 deploy` and the commit status wait for it.
func Wanted(c *statev1.Component, d *statev1.Deployment) uint32 {
	if c.Replicas == 0 && d != nil && !d.Served {
		return 1
	}
	return c.Replicas
}

func eligible(n *statev1.Node, rt statev1.Runtime) bool {
	return n != nil && n.Status == statev1.NodeStatus_NODE_STATUS_READY && slices.Contains(n.Runtimes, rt)
}

func draining(n *statev1.Node, rt statev1.Runtime) bool {
	return n != nil && n.Status == statev1.NodeStatus_NODE_STATUS_DRAINING && slices.Contains(n.Runtimes, rt)
}

// settled reports whether a placement is certainly not running and will not run again: its
// node stopped it after learning it is desired STOP, or the leader declared it lost (after
// the node's lease ran out). A placement still desired RUN that reports STOPPED may start
// again at any moment.
func settled(p *statev1.Placement) bool {
	return p.Observed == lost || (p.Desired == stop && p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED)
}

// RescheduleAfter is how many starts in a row a placement may fail on its node (the node's
// count, Placement.failures) before it is stopped there and placed on another node, as
// Nomad reschedules a failed allocation: an artifact that cannot be fetched or stored
// there, a full disk, a broken runtime. Its replacement inherits the count, so it moves
// again at its first failure, and its node first waits the restart backoff of that count:
// a version that fails everywhere is tried ever more slowly, never in a storm of writes.
const RescheduleAfter = 3

// failing reports whether p keeps failing on its node.
func failing(p *statev1.Placement) bool { return p.Failures >= RescheduleAfter }

// reschedule reports whether p, a placement wanted running that keeps failing, should move:
// another node can run it where no placement of its component keeps failing.
func reschedule(p *statev1.Placement, c *statev1.Component, allNodes []*statev1.Node, avoid map[string]bool) bool {
	if p.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED || !failing(p) {
		return false
	}
	for _, n := range allNodes {
		if n.Id != p.NodeId && !avoid[n.Id] && eligible(n, c.Runtime) {
			return true
		}
	}
	return false
}

func setDesired(plan *Plan, p *statev1.Placement, d statev1.PlacementDesired) {
	if p.Desired == d {
		return
	}
	q := &statev1.Placement{
		Id: p.Id, ComponentId: p.ComponentId, DeploymentId: p.DeploymentId, NodeId: p.NodeId,
		Desired: d, Observed: p.Observed, Reason: p.Reason, Epoch: p.Epoch + 1, SpecIndex: p.SpecIndex, Failures: p.Failures,
	}
	plan.Put = append(plan.Put, q)
}

func scheduleComponent(plan *Plan, c *statev1.Component, active *statev1.Deployment, ps []*statev1.Placement,
	allNodes []*statev1.Node, nodes map[string]*statev1.Node, load map[string]int, h Hints) {

	wantRunning := c.Desired == statev1.DesiredState_DESIRED_STATE_RUNNING && active != nil &&
		active.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY
	exclusive := c.GetSpec().GetExclusive()
	// Nodes where a placement of the component keeps failing: new ones go elsewhere first.
	// The new ones inherit the failures of the active deployment's placements moved away
	// (an exclusive component's replacement is placed once the failing one has stopped).
	avoid := map[string]bool{}
	var inherit uint32
	for _, p := range ps {
		if !failing(p) || (p.Desired != stop && p.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED) {
			continue
		}
		avoid[p.NodeId] = true
		if p.Desired == stop && p.DeploymentId == c.ActiveDeploymentId {
			inherit = max(inherit, p.Failures)
		}
	}
	var cur, old []*statev1.Placement // wanted-running placements of the active deployment / to replace
	for _, p := range ps {
		switch {
		case nodes[p.NodeId] == nil:
			// Its node was removed: no write may name it again (fsm refuses), so the
			// placement is deleted, never changed, and replaced below.
			plan.Delete = append(plan.Delete, p.Id)
			if p.Desired == run {
				load[p.NodeId]--
			}
		case p.Desired == stop:
			if settled(p) {
				plan.Delete = append(plan.Delete, p.Id)
			}
		case !wantRunning:
			setDesired(plan, p, stop)
		case p.Observed == lost || (!eligible(nodes[p.NodeId], c.Runtime) && !draining(nodes[p.NodeId], c.Runtime)):
			setDesired(plan, p, stop)
			load[p.NodeId]--
		case p.DeploymentId == active.Id && p.SpecIndex == c.SpecIndex && reschedule(p, c, allNodes, avoid):
			// It keeps failing on its node: stopped there, replaced on another below.
			setDesired(plan, p, stop)
			load[p.NodeId]--
			inherit = max(inherit, p.Failures)
		case p.DeploymentId == active.Id && p.SpecIndex == c.SpecIndex && eligible(nodes[p.NodeId], c.Runtime):
			// Made for the current spec (spec_index only grows, except when FailSpecRoll
			// returns a component to its previous one: the failed change's placements,
			// made for a later one, are then old).
			cur = append(cur, p)
		default: // an older deployment or spec, or on a draining node
			old = append(old, p)
		}
	}
	if !wantRunning {
		return
	}
	want := int(Wanted(c, active))
	if exclusive {
		want = min(want, 1)
	}

	// Too many: stop the extras that do not serve (failed, starting) first, then those on
	// the busiest nodes: a scale-down never keeps a crash-looping instance over a running one.
	if len(cur) > want {
		sort.SliceStable(cur, func(i, j int) bool {
			if (cur[i].Observed == running) != (cur[j].Observed == running) {
				return cur[i].Observed != running
			}
			if load[cur[i].NodeId] != load[cur[j].NodeId] {
				return load[cur[i].NodeId] > load[cur[j].NodeId]
			}
			return cur[i].Id > cur[j].Id
		})
		for _, p := range cur[:len(cur)-want] {
			setDesired(plan, p, stop)
			load[p.NodeId]--
		}
		cur = cur[len(cur)-want:]
	}

	if exclusive {
		// Stop first, then start: never two at once. The old one stops now; a new one is
		// placed only once every other placement is settled.
		for _, p := range old {
			setDesired(plan, p, stop)
		}
		for _, p := range ps {
			if !slices.Contains(cur, p) && !settled(p) {
				return
			}
		}
		place(plan, c, active, ps, cur, want, allNodes, load, h, avoid, inherit)
		return
	}

	cur = place(plan, c, active, ps, cur, want, allNodes, load, h, avoid, inherit)

	// Rollout or drain: old placements stop only once as many new ones run.
	newRunning := 0
	for _, p := range cur {
		if p.Observed == running {
			newRunning++
		}
	}
	keepOld := max(0, want-newRunning)
	if active.Canary {
		// In its canary the new version takes only a share of the requests: the old one
		// keeps every instance until the canary ends (promoted or failed).
		keepOld = len(old)
	}
	sort.SliceStable(old, func(i, j int) bool {
		// Keep the running old ones longest.
		if (old[i].Observed == running) != (old[j].Observed == running) {
			return old[i].Observed != running
		}
		return old[i].Id < old[j].Id
	})
	if len(old) > keepOld {
		for _, p := range old[:len(old)-keepOld] {
			setDesired(plan, p, stop)
		}
	}
}

// place adds placements of the active deployment on eligible nodes until there are want:
// nodes where no placement of the component keeps failing (avoid) first, then those with
// the fewest of this component, then nodes holding the artifact, then the least loaded.
// The new placements start with failures (those of the placements they replace). It
// returns cur with the new placements.
func place(plan *Plan, c *statev1.Component, active *statev1.Deployment, ps, cur []*statev1.Placement, want int,
	allNodes []*statev1.Node, load map[string]int, h Hints, avoid map[string]bool, failures uint32) []*statev1.Placement {
	perNode := map[string]int{}
	slots := map[string]bool{}
	for _, p := range ps {
		slots[p.Id] = true
	}
	for _, p := range cur {
		perNode[p.NodeId]++
	}
	var cands []*statev1.Node
	for _, n := range allNodes {
		if eligible(n, c.Runtime) {
			cands = append(cands, n)
		}
	}
	has := func(n *statev1.Node) bool {
		return n.Id == active.ArtifactOrigin || h.Artifacts[n.Id][active.ArtifactDigest]
	}
	better := func(n, best *statev1.Node) bool {
		if avoid[n.Id] != avoid[best.Id] {
			return !avoid[n.Id]
		}
		if perNode[n.Id] != perNode[best.Id] {
			return perNode[n.Id] < perNode[best.Id]
		}
		if has(n) != has(best) {
			return has(n)
		}
		return load[n.Id] < load[best.Id]
	}
	for len(cur) < want && len(cands) > 0 {
		best := cands[0]
		for _, n := range cands[1:] {
			if better(n, best) {
				best = n
			}
		}
		id := placementID(active.Id, best.Id, slots)
		slots[id] = true
		p := &statev1.Placement{Id: id, ComponentId: c.Id, DeploymentId: active.Id, NodeId: best.Id, Desired: run, Epoch: 1, SpecIndex: c.SpecIndex, Failures: failures}
		plan.Put = append(plan.Put, p)
		cur = append(cur, p)
		perNode[best.Id]++
		load[best.Id]++
	}
	return cur
}

// placementID names a placement after its deployment, node and the first free slot, so the
// plan needs no randomness.
func placementID(dep, node string, taken map[string]bool) string {
	d := dep
	if len(d) > 12 {
		d = d[:12]
	}
	for slot := 0; ; slot++ {
		id := fmt.Sprintf("%s-%s-%d", d, node, slot)
		if !taken[id] {
			return id
		}
	}
}
