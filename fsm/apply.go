package fsm

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/spec"
)

// apply applies one command and, when it succeeds, records it in the audit log.
func apply(t *tables, index uint64, cmd *statev1.Command) error {
	err := applyOp(t, index, cmd)
	if err == nil {
		t.audit(index, cmd.GetTime(), cmd)
	}
	return err
}

// applyOp dispatches one command. Each applyXxx validates everything first and mutates only
// when the whole command is valid, so a failed command leaves no trace.
func applyOp(t *tables, index uint64, cmd *statev1.Command) error {
	if cmd == nil {
		return invalid("empty command")
	}
	now := cmd.GetTime()
	if now != nil {
		now = keep(t, now) // the state must not share memory with the caller's command
	}
	switch op := cmd.Op.(type) {
	case *statev1.Command_CreateComponent:
		return t.createComponent(index, now, op.CreateComponent)
	case *statev1.Command_CreateLinkedComponent:
		return t.createLinkedComponent(index, now, op.CreateLinkedComponent, cmd.GetActor())
	case *statev1.Command_UpdateComponentSpec:
		return t.updateComponentSpec(index, now, op.UpdateComponentSpec)
	case *statev1.Command_SetComponentDesired:
		return t.setComponentDesired(index, now, op.SetComponentDesired)
	case *statev1.Command_ScaleComponent:
		return t.scaleComponent(index, now, op.ScaleComponent)
	case *statev1.Command_DeleteComponent:
		return t.deleteComponent(index, op.DeleteComponent)
	case *statev1.Command_RegisterNode:
		return t.registerNode(index, now, op.RegisterNode)
	case *statev1.Command_SetNodeStatus:
		return t.setNodeStatus(index, op.SetNodeStatus)
	case *statev1.Command_RemoveNode:
		return t.removeNode(index, op.RemoveNode)
	case *statev1.Command_CreateDeployment:
		return t.createDeployment(index, now, op.CreateDeployment, cmd.GetActor())
	case *statev1.Command_SetDeploymentStatus:
		return t.setDeploymentStatus(index, now, op.SetDeploymentStatus)
	case *statev1.Command_ActivateDeployment:
		return t.activateDeployment(index, now, op.ActivateDeployment)
	case *statev1.Command_EndCanary:
		return t.endCanary(index, now, op.EndCanary)
	case *statev1.Command_StartCanary:
		return t.startCanary(index, now, op.StartCanary)
	case *statev1.Command_FailSpecRoll:
		return t.failSpecRoll(index, now, op.FailSpecRoll)
	case *statev1.Command_PutPlacements:
		return t.putPlacements(index, op.PutPlacements)
	case *statev1.Command_SetPlacementObserved:
		return t.setPlacementObserved(index, op.SetPlacementObserved)
	case *statev1.Command_DeletePlacements:
		return t.deletePlacements(index, op.DeletePlacements)
	case *statev1.Command_CreateUser:
		return t.createUser(now, op.CreateUser)
	case *statev1.Command_CreateApiToken:
		return t.createAPIToken(now, op.CreateApiToken)
	case *statev1.Command_DeleteApiToken:
		return t.deleteAPIToken(op.DeleteApiToken)
	case *statev1.Command_PutGithubLink:
		return t.putGithubLink(op.PutGithubLink)
	case *statev1.Command_DeleteGithubLink:
		return t.deleteGithubLink(op.DeleteGithubLink)
	case *statev1.Command_AclBootstrap:
		return t.aclBootstrap(now, op.AclBootstrap)
	case *statev1.Command_RevokeApiToken:
		return t.revokeAPIToken(now, op.RevokeApiToken)
	case *statev1.Command_PutSecret:
		return t.putSecret(index, now, op.PutSecret)
	case *statev1.Command_DeleteSecret:
		return t.deleteSecret(index, op.DeleteSecret)
	case *statev1.Command_TouchApiTokens:
		return t.touchAPITokens(op.TouchApiTokens)
	case *statev1.Command_DeleteGithubBinding:
		return t.deleteGithubBinding(op.DeleteGithubBinding)
	case nil:
		if cmd.GetIgnoreIfUnknown() {
			return nil
		}
		return ErrUnknownCommand
	default:
		return ErrUnknownCommand
	}
}

// ---- components ----

func (t *tables) createComponent(index uint64, now *timestamppb.Timestamp, op *statev1.CreateComponent) error {
	c := op.GetComponent()
	if err := t.checkNewComponent(c); err != nil {
		return err
	}
	t.insertComponent(index, now, c)
	return nil
}

// checkNewComponent checks a component to be created against the state.
func (t *tables) checkNewComponent(c *statev1.Component) error {
	if c == nil || c.Id == "" {
		return invalid("component id is missing")
	}
	if err := ValidName(c.Name); err != nil {
		return err
	}
	if _, ok := t.components[c.Id]; ok {
		return exists("component id", c.Id)
	}
	if _, ok := t.byName[c.Name]; ok {
		return exists("component", c.Name)
	}
	if err := validRuntime(c.Runtime); err != nil {
		return err
	}
	if err := validSource(c.Source); err != nil {
		return err
	}
	if err := ValidSpec(c.Runtime, c.Spec); err != nil {
		return err
	}
	if c.Replicas < c.Spec.ScaleMin || c.Replicas > c.Spec.ScaleMax {
		return invalid("replicas %d outside scale.min..scale.max (%d..%d)", c.Replicas, c.Spec.ScaleMin, c.Spec.ScaleMax)
	}
	if c.ActiveDeploymentId != "" {
		return invalid("a new component has no active deployment")
	}
	switch c.Desired {
	case statev1.DesiredState_DESIRED_STATE_UNSPECIFIED:
	case statev1.DesiredState_DESIRED_STATE_RUNNING, statev1.DesiredState_DESIRED_STATE_PAUSED:
	default:
		return invalid("desired state %d is unknown", c.Desired)
	}
	return nil
}

// insertComponent records a component checkNewComponent accepted.
func (t *tables) insertComponent(index uint64, now *timestamppb.Timestamp, c *statev1.Component) {
	c = keep(t, c)
	if c.Desired == statev1.DesiredState_DESIRED_STATE_UNSPECIFIED {
		c.Desired = statev1.DesiredState_DESIRED_STATE_RUNNING
	}
	c.CreateTime, c.UpdateTime = now, now
	c.CreateIndex, c.ModifyIndex = index, index
	t.components[c.Id] = c
	t.byName[c.Name] = c.Id
}

// createLinkedComponent creates a component linked to a GitHub repository, its link and the
// pending deployment of the branch head, all or nothing: everything is checked before
// anything is written.
func (t *tables) createLinkedComponent(index uint64, now *timestamppb.Timestamp, op *statev1.CreateLinkedComponent, actor string) error {
	c, l, d := op.GetComponent(), op.GetLink(), op.GetDeployment()
	if c == nil || l == nil || d == nil {
		return invalid("a linked create needs a component, a link and a deployment")
	}
	if err := t.checkNewComponent(c); err != nil {
		return err
	}
	if l.ComponentId != c.Id || d.ComponentId != c.Id {
		return invalid("the link and the deployment must name the new component %q", c.Id)
	}
	if err := checkLink(l); err != nil {
		return err
	}
	if c.GetSource().GetGithubRepo() != l.Repo || c.GetSource().GetBranch() != l.Branch {
		return invalid("the component's source %s@%s is not the linked %s@%s", c.GetSource().GetGithubRepo(), c.GetSource().GetBranch(), l.Repo, l.Branch)
	}
	if err := t.checkNewDeployment(d, true); err != nil {
		return err
	}
	t.insertComponent(index, now, c)
	t.links[l.ComponentId] = clone(l)
	t.insertDeployment(index, now, d, actor)
	return nil
}

func (t *tables) component(name string) (*statev1.Component, error) {
	id, ok := t.byName[name]
	if !ok {
		return nil, notFound("component", name)
	}
	return t.components[id], nil
}

func (t *tables) updateComponentSpec(index uint64, now *timestamppb.Timestamp, op *statev1.UpdateComponentSpec) error {
	c, err := t.component(op.GetName())
	if err != nil {
		return err
	}
	if op.IfModifyIndex != 0 && op.IfModifyIndex != c.ModifyIndex {
		return conflict("component %q changed at index %d, after the read at %d this spec was edited from", c.Name, c.ModifyIndex, op.IfModifyIndex)
	}
	if err := ValidSpec(c.Runtime, op.GetSpec()); err != nil {
		return err
	}
	if op.FromManifest {
		// A rollback's spec, as versions before ActivateDeployment carried it wrote it (entries
		// still in the log): it comes with its deployment, and is not undone apart from it.
		t.setManifestSpec(index, c, op.Spec, true)
		if c.SpecIndex == index {
			c.PrevSpec, c.PrevUser, c.PrevSpecIndex, c.SpecError = nil, nil, 0, ""
		}
	} else {
		done := remember(c)
		// What a user wants: its differences from the manifest are the user's settings.
		c.User = spec.UserChanges(c.ManifestSpec, op.Spec)
		t.setSpec(index, c, clone(op.Spec))
		done(index)
	}
	c.UpdateTime, c.ModifyIndex = now, index
	return nil
}

// setManifestSpec records a manifest's spec and gives the component that spec with the
// user's settings over it. Settings the new manifest makes invalid (a user's scale.max below
// the manifest's new scale.min) give way to the manifest until the user changes them.
//
// roll is false when the spec comes with a change of the active deployment (an activation, a
// failed rollout's fallback): instances of another deployment are replaced anyway, and the
// fallback's own instances already run with its spec.
func (t *tables) setManifestSpec(index uint64, c *statev1.Component, m *statev1.ComponentSpec, roll bool) {
	c.ManifestSpec = clone(m)
	eff := spec.WithUser(m, c.User)
	if ValidSpec(c.Runtime, eff) != nil {
		eff = clone(m)
	}
	if !roll {
		c.Spec = eff
		c.Replicas = min(max(c.Replicas, c.Spec.ScaleMin), c.Spec.ScaleMax)
		return
	}
	t.setSpec(index, c, eff)
}

// remember returns what to call after a change of c at index: when the change rolls c's
// instances (moves spec_index), c keeps what it was before (prev_spec, prev_user,
// prev_spec_index: what FailSpecRoll returns to) and its last roll's error is cleared.
func remember(c *statev1.Component) func(index uint64) {
	s, u, si := clone(c.Spec), clone(c.User), c.SpecIndex
	return func(index uint64) {
		if c.SpecIndex == index && si != index {
			c.PrevSpec, c.PrevUser, c.PrevSpecIndex, c.SpecError = s, u, si, ""
		}
	}
}

// failSpecRoll undoes a change that rolled the component's instances, whose new instances
// failed: the component returns to its spec and user settings from before, and to their
// spec_index, so that the instances made for it (still serving) are the current ones again
// and the failed ones are stopped. A component changed since is left alone.
func (t *tables) failSpecRoll(index uint64, now *timestamppb.Timestamp, op *statev1.FailSpecRoll) error {
	c, ok := t.components[op.GetComponentId()]
	if !ok {
		return notFound("component id", op.GetComponentId())
	}
	if c.SpecIndex != op.GetSpecIndex() || c.PrevSpec == nil {
		return nil // changed again since (or nothing to return to): nothing to undo
	}
	c.Spec, c.User, c.SpecIndex = c.PrevSpec, c.PrevUser, c.PrevSpecIndex
	c.PrevSpec, c.PrevUser, c.PrevSpecIndex = nil, nil, 0
	c.Replicas = min(max(c.Replicas, c.Spec.ScaleMin), c.Spec.ScaleMax)
	c.SpecError = op.GetError()
	c.UpdateTime, c.ModifyIndex = now, index
	return nil
}

// setSpec gives a component a new spec: replicas stay within its bounds, and a change that
// affects instances moves spec_index, so that the scheduler replaces every instance (new
// ones first); a change of scale alone restarts nothing.
func (t *tables) setSpec(index uint64, c *statev1.Component, s *statev1.ComponentSpec) {
	if spec.RestartsInstances(c.Spec, s) {
		c.SpecIndex = index
	}
	c.Spec = s
	c.Replicas = min(max(c.Replicas, c.Spec.ScaleMin), c.Spec.ScaleMax)
}

func (t *tables) setComponentDesired(index uint64, now *timestamppb.Timestamp, op *statev1.SetComponentDesired) error {
	c, err := t.component(op.GetName())
	if err != nil {
		return err
	}
	switch op.Desired {
	case statev1.DesiredState_DESIRED_STATE_RUNNING, statev1.DesiredState_DESIRED_STATE_PAUSED:
	default:
		return invalid("desired state must be running or paused")
	}
	c.Desired = op.Desired
	c.UpdateTime, c.ModifyIndex = now, index
	return nil
}

func (t *tables) scaleComponent(index uint64, now *timestamppb.Timestamp, op *statev1.ScaleComponent) error {
	c, err := t.component(op.GetName())
	if err != nil {
		return err
	}
	if op.IfModifyIndex != 0 && op.IfModifyIndex != c.ModifyIndex {
		return conflict("component %q changed at index %d, after the read at %d this scale was decided from", c.Name, c.ModifyIndex, op.IfModifyIndex)
	}
	if op.Replicas < c.Spec.GetScaleMin() || op.Replicas > c.Spec.GetScaleMax() {
		return invalid("replicas %d outside scale.min..scale.max (%d..%d) of %q", op.Replicas, c.Spec.GetScaleMin(), c.Spec.GetScaleMax(), c.Name)
	}
	c.Replicas = op.Replicas
	c.UpdateTime, c.ModifyIndex = now, index
	return nil
}

// deleteComponent removes a component with its deployments, placements and GitHub link.
func (t *tables) deleteComponent(index uint64, op *statev1.DeleteComponent) error {
	c, err := t.component(op.GetName())
	if err != nil {
		return err
	}
	t.touched.add(index, c.Id)
	for id, d := range t.deployments {
		if d.ComponentId == c.Id {
			delete(t.deployments, id)
		}
	}
	for id, p := range t.placements {
		if p.ComponentId == c.Id {
			delete(t.placements, id)
		}
	}
	delete(t.links, c.Id)
	for k, s := range t.secrets {
		if s.ComponentId == c.Id {
			delete(t.secrets, k)
		}
	}
	delete(t.byName, c.Name)
	delete(t.components, c.Id)
	return nil
}

// ---- nodes ----

func (t *tables) registerNode(index uint64, now *timestamppb.Timestamp, op *statev1.RegisterNode) error {
	n := op.GetNode()
	if n == nil || n.Id == "" {
		return invalid("node id is missing")
	}
	if n.RaftAddr == "" || n.ApiAddr == "" {
		return invalid("node %q needs raft and api addresses", n.Id)
	}
	for _, rt := range n.Runtimes {
		if err := validRuntime(rt); err != nil {
			return err
		}
	}
	n = clone(n)
	if n.Status == statev1.NodeStatus_NODE_STATUS_UNSPECIFIED {
		n.Status = statev1.NodeStatus_NODE_STATUS_READY
	}
	if err := validNodeStatus(n.Status); err != nil {
		return err
	}
	n.RegisterTime = now
	n.CreateIndex, n.ModifyIndex = index, index
	if old, ok := t.nodes[n.Id]; ok {
		n.CreateIndex = old.CreateIndex
		if op.GetNode().GetStatus() == statev1.NodeStatus_NODE_STATUS_UNSPECIFIED {
			n.Status = old.Status // re-registering (new addresses) keeps down or draining
		}
	}
	t.nodes[n.Id] = n
	return nil
}

func validNodeStatus(s statev1.NodeStatus) error {
	switch s {
	case statev1.NodeStatus_NODE_STATUS_READY, statev1.NodeStatus_NODE_STATUS_DOWN, statev1.NodeStatus_NODE_STATUS_DRAINING:
		return nil
	}
	return invalid("node status %d is unknown", s)
}

func (t *tables) setNodeStatus(index uint64, op *statev1.SetNodeStatus) error {
	n, ok := t.nodes[op.GetId()]
	if !ok {
		return notFound("node", op.GetId())
	}
	if err := validNodeStatus(op.Status); err != nil {
		return err
	}
	n.Status, n.ModifyIndex = op.Status, index
	switch op.Status {
	case statev1.NodeStatus_NODE_STATUS_DRAINING:
		n.Drain = true
	case statev1.NodeStatus_NODE_STATUS_READY:
		n.Drain = false
	}
	if op.Status == statev1.NodeStatus_NODE_STATUS_DOWN {
		// The leader stopped hearing the node for longer than its TTL: everything placed there
		// is stopped and lost (the node has fenced its exclusive instances by then) and gets
		// replaced; the node, when back, stops whatever it still runs of them.
		for _, p := range t.placements {
			if p.NodeId == n.Id {
				if p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_STOP {
					p.Desired, p.Epoch = statev1.PlacementDesired_PLACEMENT_DESIRED_STOP, p.Epoch+1
				}
				p.Observed, p.Reason, p.ModifyIndex = statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST, "node down", index
			}
		}
	}
	return nil
}

// removeNode forgets a node. In the same entry its placements are desired stopped and
// declared lost, the same verdict as a node marked down: the scheduler only has to delete
// them and place replacements, and never writes a placement on a node that is gone.
func (t *tables) removeNode(index uint64, op *statev1.RemoveNode) error {
	if _, ok := t.nodes[op.GetId()]; !ok {
		return notFound("node", op.GetId())
	}
	for _, p := range t.placements {
		if p.NodeId == op.Id {
			if p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_STOP {
				p.Desired, p.Epoch = statev1.PlacementDesired_PLACEMENT_DESIRED_STOP, p.Epoch+1
			}
			p.Observed, p.Reason, p.ModifyIndex = statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST, "node removed", index
		}
	}
	delete(t.nodes, op.Id)
	return nil
}

// ---- deployments ----

func (t *tables) createDeployment(index uint64, now *timestamppb.Timestamp, op *statev1.CreateDeployment, actor string) error {
	d := op.GetDeployment()
	if err := t.checkNewDeployment(d, false); err != nil {
		return err
	}
	t.insertDeployment(index, now, d, actor)
	return nil
}

// checkNewDeployment checks a deployment to be created; newComponent says its component is
// created by the same command (and so is not in the state yet).
func (t *tables) checkNewDeployment(d *statev1.Deployment, newComponent bool) error {
	if d == nil || d.Id == "" {
		return invalid("deployment id is missing")
	}
	if _, ok := t.deployments[d.Id]; ok {
		return exists("deployment", d.Id)
	}
	if _, ok := t.components[d.ComponentId]; !ok && !newComponent {
		return notFound("component id", d.ComponentId)
	}
	if d.DeliveryId != "" {
		// A webhook delivered twice (GitHub redelivers with the same id) deploys once.
		for _, o := range t.deployments {
			if o.ComponentId == d.ComponentId && o.DeliveryId == d.DeliveryId {
				return exists("webhook delivery", d.DeliveryId)
			}
		}
	}
	switch d.Status {
	case statev1.DeploymentStatus_DEPLOYMENT_STATUS_UNSPECIFIED, statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING:
	case statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY:
		if d.ArtifactDigest == "" {
			return invalid("a ready deployment needs an artifact digest")
		}
	default:
		return invalid("a new deployment is pending or ready")
	}
	return nil
}

// insertDeployment records a deployment checkNewDeployment accepted.
func (t *tables) insertDeployment(index uint64, now *timestamppb.Timestamp, d *statev1.Deployment, actor string) {
	d = clone(d)
	d.BuildLog = tailLog(d.BuildLog)
	if d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_UNSPECIFIED {
		d.Status = statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING
	}
	d.CreateTime, d.UpdateTime = now, now
	if d.Actor == "" {
		d.Actor = actor
	}
	d.CreateIndex, d.ModifyIndex = index, index
	t.deployments[d.Id] = d
}

// MaxBuildLog bounds the build output a deployment keeps; longer logs keep their tail.
const MaxBuildLog = 64 << 10

func tailLog(s string) string {
	if len(s) <= MaxBuildLog {
		return s
	}
	return "…" + s[len(s)-MaxBuildLog:]
}

func terminal(s statev1.DeploymentStatus) bool {
	return s == statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY || s == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED
}

func (t *tables) setDeploymentStatus(index uint64, now *timestamppb.Timestamp, op *statev1.SetDeploymentStatus) error {
	d, ok := t.deployments[op.GetId()]
	if !ok {
		return notFound("deployment", op.GetId())
	}
	switch op.Status {
	case statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY:
		if terminal(d.Status) {
			return invalid("deployment %q is already %s", d.Id, d.Status)
		}
	case statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED:
		if op.IfUnfinished && terminal(d.Status) {
			return nil // it became ready (or failed) meanwhile: that stands
		}
		if d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
			return invalid("deployment %q has already failed", d.Id)
		}
		if fb := op.GetFallback(); fb != "" {
			f, ok := t.deployments[fb]
			switch {
			case !ok:
				return notFound("deployment", fb)
			case f.ComponentId != d.ComponentId || f.Id == d.Id:
				return invalid("fallback deployment %q is not another deployment of the same component", fb)
			case f.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY:
				return invalid("fallback deployment %q is %s, not ready", fb, f.Status)
			}
		} else if c := t.components[d.ComponentId]; c != nil && c.ActiveDeploymentId == d.Id && !op.Deactivate {
			return invalid("deployment %q is active: activate another before failing it", d.Id)
		}
	default:
		return invalid("deployment status can only move to building, ready or failed")
	}
	if op.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY && op.ArtifactDigest == "" && d.ArtifactDigest == "" {
		return invalid("a ready deployment needs an artifact digest")
	}
	if op.Spec != nil {
		if err := ValidSpec(t.components[d.ComponentId].GetRuntime(), op.Spec); err != nil {
			return err
		}
	}
	c := t.components[d.ComponentId]
	if op.Activate && (op.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY || c == nil) {
		return invalid("only a deployment that becomes ready can be activated with its status")
	}
	d.Status, d.Error = op.Status, op.Error
	if op.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		d.Canary, d.CanaryStart = false, nil
		if c != nil && c.ActiveDeploymentId == d.Id { // op.Fallback or op.Deactivate, checked above
			if fb := t.deployments[op.GetFallback()]; fb != nil {
				if fb.Spec != nil {
					t.setManifestSpec(index, c, fb.Spec, false) // the spec it serves with
				}
				t.activate(index, now, c, fb)
			} else {
				c.ActiveDeploymentId = ""
				c.UpdateTime, c.ModifyIndex = now, index
			}
		}
	}
	if op.ArtifactDigest != "" {
		d.ArtifactDigest = op.ArtifactDigest
	}
	if op.BuildLog != "" {
		d.BuildLog = tailLog(op.BuildLog)
	}
	if op.Spec != nil {
		d.Spec = clone(op.Spec)
	}
	if op.ArtifactOrigin != "" {
		d.ArtifactOrigin = op.ArtifactOrigin
	}
	d.UpdateTime, d.ModifyIndex = now, index
	if op.Activate {
		if active, ok := t.deployments[c.ActiveDeploymentId]; ok && active.CreateIndex > d.CreateIndex {
			return nil // a newer deployment serves already: this one stays ready, inactive
		}
		if d.CreateIndex < c.RollbackIndex {
			return nil // pushed before a rollback: it stays ready, inactive, until activated
		}
		if op.Spec != nil {
			t.setManifestSpec(index, c, op.Spec, false)
		}
		t.activate(index, now, c, d)
	}
	return nil
}

// activate makes d its component's active deployment. A new version (created after the one
// it replaces) starts in its canary phase when the component has a canary and the version
// it replaces has an instance running; a rollback, a re-activation or a first deployment
// takes all the traffic at once. A version superseded during its own canary leaves it and
// is marked canary_superseded (cleared when it is activated again without a canary).
func (t *tables) activate(index uint64, now *timestamppb.Timestamp, c *statev1.Component, d *statev1.Deployment) {
	prev := t.deployments[c.ActiveDeploymentId]
	c.ActiveDeploymentId = d.Id
	c.UpdateTime, c.ModifyIndex = now, index
	if prev == nil || prev.Id == d.Id {
		return
	}
	// A configuration change being judged when another version takes over can no longer be
	// undone (FailSpecRoll): what it returned to was the old version's manifest. The new
	// version's rollout judges its instances instead.
	c.PrevSpec, c.PrevUser, c.PrevSpecIndex = nil, nil, 0
	if prev.Canary {
		// Superseded in its canary: never a version to fall back on (sched).
		prev.Canary, prev.CanaryStart, prev.CanarySuperseded = false, nil, true
		prev.UpdateTime, prev.ModifyIndex = now, index
	}
	canary := false
	if pct, _ := spec.Canary(c.Spec); pct > 0 && d.CreateIndex > prev.CreateIndex {
		for _, p := range t.placements {
			if p.DeploymentId == prev.Id && p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN &&
				p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
				canary = true
				break
			}
		}
	}
	if d.Canary != canary || d.CanaryStart != nil || (!canary && d.CanarySuperseded) {
		d.Canary, d.CanaryStart = canary, nil
		d.CanarySuperseded = d.CanarySuperseded && canary // all the traffic at once: chosen by hand
		d.UpdateTime, d.ModifyIndex = now, index
	}
}

func (t *tables) startCanary(index uint64, now *timestamppb.Timestamp, op *statev1.StartCanary) error {
	d, ok := t.deployments[op.GetDeploymentId()]
	if !ok {
		return notFound("deployment", op.GetDeploymentId())
	}
	if !d.Canary || d.CanaryStart != nil {
		return invalid("deployment %q is not in a canary waiting to start", d.Id)
	}
	if now == nil {
		return invalid("starting a canary needs the command's time")
	}
	d.CanaryStart = now
	d.UpdateTime, d.ModifyIndex = now, index
	return nil
}

func (t *tables) endCanary(index uint64, now *timestamppb.Timestamp, op *statev1.EndCanary) error {
	d, ok := t.deployments[op.GetDeploymentId()]
	if !ok {
		return notFound("deployment", op.GetDeploymentId())
	}
	if !d.Canary {
		return invalid("deployment %q is not in a canary", d.Id)
	}
	d.Canary, d.CanaryStart, d.CanarySuperseded = false, nil, false
	d.UpdateTime, d.ModifyIndex = now, index
	return nil
}

func (t *tables) activateDeployment(index uint64, now *timestamppb.Timestamp, op *statev1.ActivateDeployment) error {
	c, ok := t.components[op.GetComponentId()]
	if !ok {
		return notFound("component id", op.GetComponentId())
	}
	d, ok := t.deployments[op.GetDeploymentId()]
	if !ok {
		return notFound("deployment", op.GetDeploymentId())
	}
	if d.ComponentId != c.Id {
		return invalid("deployment %q belongs to another component", d.Id)
	}
	if d.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY {
		return invalid("deployment %q is %s, not ready", d.Id, d.Status)
	}
	if op.Spec != nil {
		if err := ValidSpec(c.Runtime, op.Spec); err != nil {
			return err
		}
		// The spec comes with the activation, in this one entry: nobody ever sees it with
		// the version it does not belong to (whose instances it would roll).
		t.setManifestSpec(index, c, op.Spec, false)
	}
	t.activate(index, now, c, d)
	c.RollbackIndex = index
	return nil
}

// ---- placements ----

func (t *tables) putPlacements(index uint64, op *statev1.PutPlacements) error {
	seen := map[string]bool{}
	for _, p := range op.GetPlacements() {
		if p.GetId() == "" {
			return invalid("placement id is missing")
		}
		if seen[p.Id] {
			return invalid("placement %q appears twice", p.Id)
		}
		seen[p.Id] = true
		c, ok := t.components[p.ComponentId]
		if !ok {
			return notFound("component id", p.ComponentId)
		}
		if d, ok := t.deployments[p.DeploymentId]; !ok || d.ComponentId != c.Id {
			return invalid("placement %q: deployment %q is not one of component %q", p.Id, p.DeploymentId, c.Name)
		}
		if _, ok := t.nodes[p.NodeId]; !ok {
			return notFound("node", p.NodeId)
		}
		switch p.Desired {
		case statev1.PlacementDesired_PLACEMENT_DESIRED_RUN, statev1.PlacementDesired_PLACEMENT_DESIRED_STOP:
		default:
			return invalid("placement %q: desired must be run or stop", p.Id)
		}
		if p.Observed < statev1.PlacementObserved_PLACEMENT_OBSERVED_UNSPECIFIED || p.Observed > statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST {
			return invalid("placement %q: observed state %d is unknown", p.Id, p.Observed)
		}
		if old, ok := t.placements[p.Id]; ok {
			if old.NodeId != p.NodeId || old.ComponentId != p.ComponentId {
				return invalid("placement %q cannot move to another node or component", p.Id)
			}
			if p.Epoch < old.Epoch {
				return invalid("placement %q: epoch %d is older than %d", p.Id, p.Epoch, old.Epoch)
			}
		}
	}
	for _, p := range op.GetPlacements() {
		p = clone(p)
		p.CreateIndex, p.ModifyIndex = index, index
		if old, ok := t.placements[p.Id]; ok {
			// What a node observed (or the leader declared LOST) is not the scheduler's to
			// change: a plan made from an older view must not undo a later report.
			p.CreateIndex, p.Observed, p.Reason, p.Failures = old.CreateIndex, old.Observed, old.Reason, old.Failures
		}
		t.placements[p.Id] = p
	}
	return nil
}

func (t *tables) setPlacementObserved(index uint64, op *statev1.SetPlacementObserved) error {
	p, ok := t.placements[op.GetId()]
	if !ok {
		return notFound("placement", op.GetId())
	}
	if op.Observed <= statev1.PlacementObserved_PLACEMENT_OBSERVED_UNSPECIFIED || op.Observed > statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST {
		return invalid("placement observed state %d is unknown", op.Observed)
	}
	// LOST is the leader's verdict on a placement of a down node; the node, once back, may
	// only confirm that it stopped it.
	if p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST && op.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED && op.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST {
		return invalid("placement %q was declared lost; it can only be reported stopped", p.Id)
	}
	p.Observed, p.Reason, p.ModifyIndex = op.Observed, op.Reason, index
	switch op.Observed {
	case statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED:
		p.Failures = op.Failures
	case statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING:
		p.Failures = 0
	}
	if d := t.deployments[p.DeploymentId]; d != nil && !d.Served && op.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
		d.Served, d.ModifyIndex = true, index
	}
	return nil
}

func (t *tables) deletePlacements(index uint64, op *statev1.DeletePlacements) error {
	for _, id := range op.GetIds() {
		if _, ok := t.placements[id]; !ok {
			return notFound("placement", id)
		}
	}
	for _, id := range op.GetIds() {
		if p := t.placements[id]; p != nil { // an id may be listed twice
			t.touched.add(index, p.ComponentId)
			delete(t.placements, id)
		}
	}
	return nil
}

// ---- users, tokens, GitHub links ----

func (t *tables) createUser(now *timestamppb.Timestamp, op *statev1.CreateUser) error {
	u := op.GetUser()
	if u == nil || u.Id == "" || u.Name == "" {
		return invalid("user needs an id and a name")
	}
	if _, ok := t.users[u.Id]; ok {
		return exists("user", u.Id)
	}
	for _, o := range t.users {
		if o.Name == u.Name {
			return exists("user", u.Name)
		}
	}
	u = clone(u)
	u.CreateTime = now
	t.users[u.Id] = u
	return nil
}

func (t *tables) putGithubLink(op *statev1.PutGithubLink) error {
	l := op.GetLink()
	if l == nil {
		return invalid("link is missing")
	}
	if _, ok := t.components[l.ComponentId]; !ok {
		return notFound("component id", l.ComponentId)
	}
	if err := checkLink(l); err != nil {
		return err
	}
	t.links[l.ComponentId] = clone(l)
	return nil
}

func checkLink(l *statev1.GithubLink) error {
	if err := validSource(&statev1.Source{GithubRepo: l.Repo, Branch: l.Branch}); err != nil {
		return err
	}
	if l.Repo == "" {
		return invalid("link needs a repository")
	}
	return nil
}

func (t *tables) deleteGithubLink(op *statev1.DeleteGithubLink) error {
	if _, ok := t.links[op.GetComponentId()]; !ok {
		return notFound("github link", op.GetComponentId())
	}
	delete(t.links, op.ComponentId)
	return nil
}
