package sched

import (
	"fmt"
	"strings"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// RolloutFailure is a rollout to abandon: the component's active deployment did not get its
// instances running within the deadline while an older deployment still serves.
type RolloutFailure struct {
	ComponentID, Component string // id and name
	Deployment             string // the failed (active) deployment
	Previous               string // the older deployment still serving, to activate again
	Running, Replicas      uint32
	Reason                 string // the last placement failure seen, or "no instance became ready"
	Message                string // what the deployment and the component's log say
	// Deactivate: nothing older serves (a first deployment that never served), so the
	// component is left without an active deployment rather than retried forever.
	Deactivate bool
	// SpecIndex, when set, says the failure is of a change of env, secrets or limits (the
	// component's spec_index then), not of a deployment: the change is undone
	// (FailSpecRoll) and the instances made before it keep serving.
	SpecIndex uint64
}

// ReadinessFailure starts the reason of a placement whose instance started but failed its
// readiness check: the version answers 5xx (or nothing), which retrying will not change.
const ReadinessFailure = "readiness check failed"

// NoNodeReason is why a component of runtime rt cannot be placed anywhere.
func NoNodeReason(rt statev1.Runtime) string {
	if rt == statev1.Runtime_RUNTIME_CONTAINER {
		return "no node can run containers (containerd not reachable on any node)"
	}
	return "no node can run wasm components"
}

// tally counts placements desired RUN: running, failed their readiness check, in all.
type tally struct {
	running, failed, placed int
	failure                 string // the last failure seen: "<node>: <reason>"
}

// Rollouts decides which rollouts have failed. began is when each rollout under way was
// first seen short of running instances (by active deployment id); Rollouts returns the
// rollouts to fail and the new clock: rollouts seen for the first time start at now, and
// rollouts no longer under way are forgotten. It is pure: began is not changed.
//
// A rollout is under way while a running component's active deployment runs fewer than its
// replicas and an older proved deployment (ready, not superseded in its canary) still has an
// instance running, or, while the active one never served, one served before (its
// instances all stopped: an exclusive component, a pause, lost nodes; a component scaled to
// zero, whose on-demand starts run it); it fails once it has been under way for deadline,
// that older version being activated again. A component scaled to zero (replicas 0) whose
// active deployment never served is judged against one instance, the readiness probe
// Schedule places. Only a deployment with no proved older version to fall back on is
// deactivated when it fails. A deployment that never served fails at once, whether
// or not an older one serves, when ready nodes exist and none can run its runtime, or when
// every one of its placements has failed its readiness check and none runs or starts: the
// nodes' own verdicts are the outcome, not a deadline. Other start failures (an artifact
// fetch, a busy node) may pass: the deadline decides those.
//
// A change of env, secrets or limits that rolls a served deployment's instances (its
// spec_index moves) is judged the same way, the instances made for the previous spec_index
// being the older version (specRoll); its failure carries SpecIndex.
func Rollouts(s *statev1.State, began map[string]time.Time, now time.Time, deadline time.Duration) ([]RolloutFailure, map[string]time.Time) {
	byDep := map[string]*tally{}
	bySpec := map[specKey]*tally{} // the same, per deployment and spec_index
	for _, p := range s.Placements {
		if p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
			continue
		}
		k := specKey{p.DeploymentId, p.SpecIndex}
		if byDep[p.DeploymentId] == nil {
			byDep[p.DeploymentId] = &tally{}
		}
		if bySpec[k] == nil {
			bySpec[k] = &tally{}
		}
		for _, t := range []*tally{byDep[p.DeploymentId], bySpec[k]} {
			t.placed++
			switch p.Observed {
			case statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING:
				t.running++
			case statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED:
				if strings.HasPrefix(p.Reason, ReadinessFailure) {
					t.failed++ // a verdict on the version itself, not a passing trouble of the node
				}
				t.failure = p.NodeId + ": " + p.Reason
			}
		}
	}
	deps := map[string]*statev1.Deployment{}
	for _, d := range s.Deployments {
		deps[d.Id] = d
	}
	next := map[string]time.Time{}
	var out []RolloutFailure
	for _, c := range s.Components {
		active := deps[c.ActiveDeploymentId]
		if active == nil || c.Desired != statev1.DesiredState_DESIRED_STATE_RUNNING ||
			active.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY {
			continue
		}
		// The previous version: the newest older proved deployment with an instance running.
		prev := previous(s.Deployments, c.Id, active.Id, func(id string) bool { return byDep[id] != nil && byDep[id].running > 0 })
		want := int(Wanted(c, active))
		if !active.Served && prev == nil {
			// No instance of an older version runs (a component that scales to zero, an
			// exclusive one whose old instance stopped first, old instances all lost or
			// crashed): the newest one that served is activated again if this one fails.
			// On-demand starts run it meanwhile (dataplane).
			prev = lastServed(s.Deployments, c.Id, active.Id)
		}
		cur := byDep[active.Id]
		if active.Served && prev == nil {
			// A change of env, secrets or limits rolls the active deployment's instances:
			// judged like a rollout, the instances made before it being the older version.
			if f, ok := specRoll(c, active, bySpec, began, next, now, deadline); ok {
				out = append(out, f)
			}
			continue
		}
		if !active.Served {
			reason := ""
			switch {
			case anyReady(s.Nodes) && !runnable(s.Nodes, c.Runtime):
				reason = NoNodeReason(c.Runtime)
			case cur != nil && cur.running == 0 && cur.failed > 0 && cur.failed == cur.placed:
				reason = fmt.Sprintf("every instance failed (%d of %d); last: %s", cur.failed, cur.placed, cur.failure)
			}
			if reason != "" {
				f := RolloutFailure{ComponentID: c.Id, Component: c.Name, Deployment: active.Id, Replicas: c.Replicas, Reason: reason}
				if prev == nil {
					f.Deactivate = true
					f.Message = "deployment failed: " + reason + "; nothing else serves"
				} else {
					f.Previous = prev.Id
					f.Message = fmt.Sprintf("rollout failed: %s; deployment %s keeps serving", reason, prev.Id)
				}
				out = append(out, f)
				continue
			}
		}
		if prev == nil || (cur != nil && cur.running >= want) {
			continue // nothing to fall back on, or the rollout is done
		}
		start, ok := began[active.Id]
		if !ok {
			next[active.Id] = now
			continue
		}
		next[active.Id] = start
		if now.Sub(start) < deadline {
			continue
		}
		f := RolloutFailure{ComponentID: c.Id, Component: c.Name, Deployment: active.Id, Previous: prev.Id,
			Replicas: uint32(want), Reason: "no instance became ready"}
		if cur != nil {
			f.Running = uint32(cur.running)
			if cur.failure != "" {
				f.Reason = cur.failure
			}
		}
		f.Message = fmt.Sprintf("rollout failed: %d/%d instances running after %s (%s); deployment %s keeps serving",
			f.Running, f.Replicas, deadline, f.Reason, prev.Id)
		out = append(out, f)
	}
	return out, next
}

// proved reports whether d may be fallen back on: ready, and not superseded during its
// canary (such a version never passed one nor took all the traffic).
func proved(d *statev1.Deployment) bool {
	return d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY && !d.CanarySuperseded
}

// previous is the newest proved deployment of a component, other than active, that runs
// (an instance of it running): the version a rollout or a canary falls back on.
func previous(deps []*statev1.Deployment, component, active string, runs func(id string) bool) *statev1.Deployment {
	var prev *statev1.Deployment
	for _, d := range deps {
		if d.ComponentId == component && d.Id != active && proved(d) && runs(d.Id) && (prev == nil || d.CreateIndex > prev.CreateIndex) {
			prev = d
		}
	}
	return prev
}

// lastServed is the newest proved deployment of a component, other than active, that
// served: the version to fall back on when none runs, and the one a component scaled to
// zero runs on demand while active is not yet proved.
func lastServed(deps []*statev1.Deployment, component, active string) *statev1.Deployment {
	var last *statev1.Deployment
	for _, d := range deps {
		if BetterFallback(d, last, component, active) {
			last = d
		}
	}
	return last
}

// BetterFallback reports whether d, a deployment, is a better version than last (nil: none
// yet) to serve component on demand while its active deployment has not served: one that
// served and is proved, the newest.
func BetterFallback(d, last *statev1.Deployment, component, active string) bool {
	return d.ComponentId == component && d.Id != active && d.Served && proved(d) &&
		(last == nil || d.CreateIndex > last.CreateIndex)
}

// anyReady reports whether a node is ready: until one is, nothing can be said of runtimes.
func anyReady(nodes []*statev1.Node) bool {
	for _, n := range nodes {
		if n.Status == statev1.NodeStatus_NODE_STATUS_READY {
			return true
		}
	}
	return false
}

// runnable reports whether a ready node can run runtime rt.
func runnable(nodes []*statev1.Node, rt statev1.Runtime) bool {
	for _, n := range nodes {
		if eligible(n, rt) {
			return true
		}
	}
	return false
}

// specKey names the placements of a deployment made for one spec_index of its component.
type specKey struct {
	deployment string
	index      uint64
}

// specRoll judges the roll of c's instances after a change of env, secrets or limits: under
// way while placements made for an older spec_index of the active deployment still run and
// fewer than the replicas run for the current one. It fails at once when every new
// placement failed its readiness check, and after deadline otherwise. Its clock is kept in
// next under "spec/<component id>/<spec_index>".
func specRoll(c *statev1.Component, active *statev1.Deployment, bySpec map[specKey]*tally, began, next map[string]time.Time,
	now time.Time, deadline time.Duration) (RolloutFailure, bool) {
	if c.SpecIndex == 0 || c.PrevSpec == nil {
		return RolloutFailure{}, false // no change to undo
	}
	oldRunning := 0
	for k, t := range bySpec {
		if k.deployment == active.Id && k.index < c.SpecIndex {
			oldRunning += t.running
		}
	}
	cur := bySpec[specKey{active.Id, c.SpecIndex}]
	if oldRunning == 0 || (cur != nil && cur.running >= int(c.Replicas)) {
		return RolloutFailure{}, false // nothing older serves, or the roll is done
	}
	f := RolloutFailure{ComponentID: c.Id, Component: c.Name, Deployment: active.Id, Replicas: c.Replicas, SpecIndex: c.SpecIndex}
	keep := "the instances of the previous configuration keep serving"
	if cur != nil && cur.running == 0 && cur.failed > 0 && cur.failed == cur.placed {
		f.Reason = fmt.Sprintf("every new instance failed (%d of %d); last: %s", cur.failed, cur.placed, cur.failure)
		f.Message = "configuration change undone: " + f.Reason + "; " + keep
		return f, true
	}
	key := fmt.Sprintf("spec/%s/%d", c.Id, c.SpecIndex)
	start, ok := began[key]
	if !ok {
		next[key] = now
		return RolloutFailure{}, false
	}
	next[key] = start
	if now.Sub(start) < deadline {
		return RolloutFailure{}, false
	}
	f.Reason = "no instance became ready"
	if cur != nil {
		f.Running = uint32(cur.running)
		if cur.failure != "" {
			f.Reason = cur.failure
		}
	}
	f.Message = fmt.Sprintf("configuration change undone: %d/%d new instances running after %s (%s); %s",
		f.Running, f.Replicas, deadline, f.Reason, keep)
	return f, true
}
