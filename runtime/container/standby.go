package container

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"

	"github.com/velocity9/v9/runtime"
)

// Standby containers. When Stop ends a container that was serving, the executor prepares
// another for the same spec in the background and keeps it at rest: its rootfs snapshot,
// its container record, its network namespace (with its address on the bridge) and its
// task created but not started — the runc shim running, runc's init waiting in the
// container's namespaces and cgroup to exec the process; no code of the image has run.
// The next Start of the same spec on this node (a resume, a scale-up, a request to a
// component at zero) claims it: it relabels the container with the placement and only
// starts the task, skipping the snapshot, the container record and runc create (~150 ms
// of a ~200 ms start on 2 cores).
//
// One standby per component at most, never for an exclusive component. It is removed when
// a Start of the component asks for a different spec (a new deployment, other variables or
// secrets, another memory limit), when PruneStandby's keep says the node no longer needs
// it (the component deleted, moved, redeployed, its spec_index moved on with new variables
// or secrets, the node draining or removed), and when
// the executor closes; a new executor removes those an earlier agent left.

// LabelStandby marks a standby container (value "true"); Start removes it when it claims
// the container.
const LabelStandby = "v9.standby"

// standbyPrepareTimeout bounds the preparation of a standby container.
const standbyPrepareTimeout = 2 * time.Minute

// standby is a container prepared at rest for a component.
type standby struct {
	key        string // specKey of the spec it was prepared for
	deployment string
	specIndex  uint64    // the component's spec_index then
	inst       *instance // its task created, not started; id "" until claimed
}

// specKey identifies what a container is made of: every field of the spec that goes into
// the container (not the placement id, the log sink or the proxy's per-request limits).
// It is a hash: the environment holds secrets.
func specKey(spec runtime.Spec) string {
	data, err := json.Marshal(struct {
		Component, ComponentID, DeploymentID, Dir, Digest string
		Exclusive                                         bool
		Env                                               map[string]string
		MemoryBytes                                       uint64
		Container                                         runtime.ContainerSpec
	}{spec.Component, spec.ComponentID, spec.DeploymentID, spec.Dir, spec.Digest, spec.Exclusive, spec.Env, spec.MemoryBytes, spec.Container})
	if err != nil {
		return "" // never: these types always marshal
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// standbyID names a new standby container of a component on this node.
func (e *Executor) standbyID(component string) string {
	var r [5]byte
	_, _ = rand.Read(r[:])
	return "v9-" + cleanID(e.cfg.NodeID, 16) + "-sb-" + cleanID(component, 37) + "-" + hex.EncodeToString(r[:])
}

// prepareStandby prepares, in the background, a standby container for spec, which just
// stopped serving, unless the component has one already or one is being prepared.
func (e *Executor) prepareStandby(spec runtime.Spec) {
	if spec.Exclusive || e.cfg.NoStandby {
		return
	}
	e.mu.Lock()
	keep := e.keepStandby
	e.mu.Unlock()
	if keep != nil && !keep(spec.Component, spec.DeploymentID, spec.SpecIndex) {
		return // a rollout or a move stopped it: nothing would claim the standby
	}
	key := specKey(spec)
	e.mu.Lock()
	if sb := e.standbys[spec.Component]; e.closed || e.preparing[spec.Component] || (sb != nil && sb.key == key) {
		e.mu.Unlock()
		return
	}
	e.preparing[spec.Component] = true
	e.starts.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.starts.Done()
		sb, err := e.newStandby(spec, key)
		e.mu.Lock()
		delete(e.preparing, spec.Component)
		var old *standby
		if err == nil {
			if e.closed {
				old, sb = sb, nil
			} else {
				old = e.standbys[spec.Component]
				e.standbys[spec.Component] = sb
			}
		}
		e.mu.Unlock()
		if err != nil {
			e.log.Warn("prepare a standby container", "component", spec.Component, "err", err)
			return
		}
		if old != nil {
			e.discard(e.ctx(context.Background()), old.inst)
		}
	}()
}

// newStandby creates a standby container for spec: the container and its task, not
// started.
func (e *Executor) newStandby(spec runtime.Spec, key string) (*standby, error) {
	ctx, cancel := context.WithTimeout(e.ctx(e.closing), standbyPrepareTimeout)
	defer cancel()
	ri, err := e.image(ctx, spec)
	if err != nil {
		return nil, err
	}
	rest := spec
	rest.ID, rest.Log = "", nil
	labels := map[string]string{LabelNode: e.cfg.NodeID, LabelComponent: spec.Component, LabelStandby: "true"}
	inst, err := e.prepare(ctx, rest, ri, e.standbyID(spec.Component), labels)
	e.net.refill()
	if err != nil {
		return nil, err
	}
	inst.log.Info("standby container prepared", "addr", inst.addr)
	return &standby{key: key, deployment: spec.DeploymentID, specIndex: spec.SpecIndex, inst: inst}, nil
}

// claimStandby takes the component's standby container for spec when it was prepared for
// the same spec and is still intact; nil when there is none to take. A standby for another
// spec is removed. The container is relabelled as the placement's in the background (a
// containerd metadata write, ~5 ms, while its task starts); relabeled gives the result. An
// agent that dies before that is done leaves it labelled standby: the next one removes it,
// and its reconciler starts the placement again.
func (e *Executor) claimStandby(ctx context.Context, spec runtime.Spec) (_ *instance, relabeled <-chan error) {
	e.mu.Lock()
	sb := e.standbys[spec.Component]
	delete(e.standbys, spec.Component)
	e.mu.Unlock()
	if sb == nil {
		return nil, nil
	}
	inst := sb.inst
	if sb.key != specKey(spec) || inst.exited() {
		e.discardLater(ctx, inst)
		return nil, nil
	}
	inst.claim(spec, e.log)
	labels := e.labels(spec)
	labels[LabelStandby] = "" // removes it
	paths := make([]string, 0, len(labels))
	for k := range labels {
		paths = append(paths, "labels."+k)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.client.ContainerService().Update(ctx, containers.Container{ID: inst.cid, Labels: labels}, paths...)
		if err != nil {
			err = fmt.Errorf("relabel the standby container: %w", err)
		}
		done <- err
	}()
	return inst, done
}

// StandbyOf returns the id of the component's standby container, "" when there is none.
func (e *Executor) StandbyOf(component string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if sb := e.standbys[component]; sb != nil {
		return sb.inst.cid
	}
	return ""
}

// PruneStandby removes the standby containers keep does not want: keep is asked for each,
// with the component, the deployment and the component's spec_index it was prepared for.
// Until the next call, keep also decides whether a stopped container leaves a standby at all.
func (e *Executor) PruneStandby(ctx context.Context, keep func(component, deploymentID string, specIndex uint64) bool) {
	e.mu.Lock()
	e.keepStandby = keep
	sbs := maps.Clone(e.standbys)
	e.mu.Unlock()
	for c, sb := range sbs {
		if keep(c, sb.deployment, sb.specIndex) {
			delete(sbs, c)
		}
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return // Close removes them
	}
	var drop []*standby
	for c, sb := range sbs {
		if e.standbys[c] == sb { // not claimed or replaced meanwhile
			drop = append(drop, sb)
			delete(e.standbys, c)
		}
	}
	e.mu.Unlock()
	for _, sb := range drop {
		sb.inst.log.Info("removing a standby container no longer needed")
		e.discardLater(ctx, sb.inst)
	}
}

// discardLater removes an instance's container in the background (now if the executor is
// closing).
func (e *Executor) discardLater(ctx context.Context, inst *instance) {
	ctx = e.ctx(context.WithoutCancel(ctx))
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.discard(ctx, inst)
		return
	}
	e.starts.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.starts.Done()
		e.discard(ctx, inst)
	}()
}

// closeStandbys removes every standby container, for Close.
func (e *Executor) closeStandbys() {
	e.mu.Lock()
	sbs := e.standbys
	e.standbys = map[string]*standby{}
	e.mu.Unlock()
	for _, sb := range sbs {
		e.discard(e.ctx(context.Background()), sb.inst)
	}
}

// removeLeftStandbys removes the standby containers of this node an earlier agent left.
func (e *Executor) removeLeftStandbys(ctx context.Context) error {
	cs, err := e.client.Containers(ctx, `labels."`+LabelStandby+`"==true,labels."`+LabelNode+`"==`+strconv.Quote(e.cfg.NodeID))
	if err != nil {
		return fmt.Errorf("list standby containers: %w", err)
	}
	for _, c := range cs {
		if err := e.remove(ctx, c.ID(), nil); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove standby container %s: %w", c.ID(), err)
		}
	}
	return nil
}

// placementContainer finds the container of placement id: the one named after it, else one
// claimed from standby and labelled with it; "" when there is none.
func (e *Executor) placementContainer(ctx context.Context, id string) (string, error) {
	cid := e.containerID(id)
	if _, err := e.client.LoadContainer(ctx, cid); err == nil || !errdefs.IsNotFound(err) {
		return cid, err
	}
	cs, err := e.client.Containers(ctx, `labels."`+LabelPlacement+`"==`+strconv.Quote(id)+`,labels."`+LabelNode+`"==`+strconv.Quote(e.cfg.NodeID))
	if err != nil {
		return "", fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		if e.fromStandby(c.ID()) {
			return c.ID(), nil
		}
	}
	return "", nil
}

// fromStandby reports whether cid names a container made as a standby by this node.
func (e *Executor) fromStandby(cid string) bool {
	p := "v9-" + cleanID(e.cfg.NodeID, 16) + "-sb-"
	return len(cid) > len(p) && cid[:len(p)] == p
}
