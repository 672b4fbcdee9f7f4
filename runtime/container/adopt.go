package container

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"

	"github.com/velocity9/v9/runtime"
)

// Running lists the placement ids of this node's containers whose task is running: the
// instances an earlier agent left. This node's containers whose task has exited (they
// ended while no agent watched) and that no instance of this executor holds are removed
// on the way, since nothing else would ever remove them.
func (e *Executor) Running(ctx context.Context) ([]string, error) {
	ctx = e.ctx(ctx)
	containers, err := e.client.Containers(ctx, `labels."`+LabelNode+`"`)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, c := range containers {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.ID(), err)
		}
		id := info.Labels[LabelPlacement]
		if info.Labels[LabelNode] != e.cfg.NodeID || id == "" || (c.ID() != e.containerID(id) && !e.fromStandby(c.ID())) {
			continue
		}
		running, err := taskRunning(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.ID(), err)
		}
		if running {
			ids = append(ids, id)
			continue
		}
		e.mu.Lock()
		_, held := e.instances[id]
		e.mu.Unlock()
		if !held {
			e.log.Info("removing an exited container", "instance", id, "container", c.ID())
			if err := e.remove(ctx, c.ID(), nil); err != nil {
				e.log.Warn("remove exited container", "container", c.ID(), "err", err)
			}
		}
	}
	return ids, nil
}

func taskRunning(ctx context.Context, c containerd.Container) (bool, error) {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	st, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return st.Status == containerd.Running, nil
}

// Adopt takes over the placement's running container without restarting it: it watches
// the task again, reattaches to its stdout and stderr FIFOs (when they are still in
// StateDir; else the container runs on without logs) and forwards to the address recorded
// in the container's labels, in the network namespace it keeps. Adopting an instance this executor already holds returns it.
func (e *Executor) Adopt(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	ctx = e.ctx(ctx)
	e.mu.Lock()
	if inst := e.instances[spec.ID]; inst != nil && !inst.exited() {
		e.mu.Unlock()
		return inst, nil
	}
	e.mu.Unlock()

	cid, err := e.placementContainer(ctx, spec.ID)
	if err != nil {
		return nil, fmt.Errorf("adopt %s: %w", spec.ID, err)
	}
	if cid == "" {
		return nil, fmt.Errorf("adopt %s: %w", spec.ID, runtime.ErrNotFound)
	}
	c, err := e.client.LoadContainer(ctx, cid)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("adopt %s: %w", spec.ID, runtime.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("adopt %s: load container: %w", spec.ID, err)
	}
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return nil, fmt.Errorf("adopt %s: %w", spec.ID, err)
	}
	if info.Labels[LabelNode] != e.cfg.NodeID || info.Labels[LabelPlacement] != spec.ID {
		return nil, fmt.Errorf("adopt %s: container %s belongs to node %q, placement %q", spec.ID, cid, info.Labels[LabelNode], info.Labels[LabelPlacement])
	}
	// The container keeps its network namespace and address. One from before v9 gave
	// containers their own (host networking) is not adopted: the reconciler starts the
	// placement again, which replaces it.
	nsPath := info.Labels[LabelNetNS]
	if nsPath == "" {
		return nil, fmt.Errorf("adopt %s: container %s has no network namespace of its own: %w", spec.ID, cid, runtime.ErrNotFound)
	}
	ip, err := e.net.addr(nsPath)
	if err != nil {
		return nil, fmt.Errorf("adopt %s: %w", spec.ID, err)
	}
	addr := netip.AddrPortFrom(ip, Port).String()

	inst := e.newInstance(spec, cid, addr)
	task, err := c.Task(ctx, cio.NewAttach(cio.WithStreams(nil, inst.stdout, inst.stderr)))
	if err != nil && !errdefs.IsNotFound(err) {
		inst.log.Warn("cannot reattach to the container's output; it runs on without logs", "err", err)
		task, err = c.Task(ctx, nil)
	}
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("adopt %s: container %s has no task: %w", spec.ID, cid, runtime.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("adopt %s: load task: %w", spec.ID, err)
	}
	st, err := task.Status(ctx)
	if err == nil && st.Status != containerd.Running {
		err = fmt.Errorf("task is %s, not running", st.Status)
	}
	if err == nil {
		err = inst.watch(ctx, task)
	}
	if err != nil {
		if io := task.IO(); io != nil {
			io.Cancel()
		}
		return nil, fmt.Errorf("adopt %s: %w", spec.ID, err)
	}

	e.mu.Lock()
	e.instances[spec.ID] = inst
	e.mu.Unlock()
	inst.log.Info("adopted container", "addr", addr, "pid", task.Pid())
	return inst, nil
}
