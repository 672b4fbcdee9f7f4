package container

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
)

// killWait bounds how long Stop waits for a task to exit after SIGKILL.
const killWait = 10 * time.Second

// Stop stops the placement's container: SIGTERM, then SIGKILL to every process in it after
// StopGrace, then deletes the task, the container and its snapshot. It works for containers
// this executor did not start (left by an earlier agent), and stopping an unknown or
// already removed id returns nil.
func (e *Executor) Stop(ctx context.Context, id string) error {
	ctx = e.ctx(ctx)
	e.mu.Lock()
	inst := e.instances[id]
	delete(e.instances, id)
	e.mu.Unlock()
	serving := inst != nil && !inst.exited()
	cid := ""
	if inst != nil {
		inst.setStopping()
		cid = inst.cid
	} else {
		var err error
		if cid, err = e.placementContainer(ctx, id); err != nil || cid == "" {
			if err != nil {
				return fmt.Errorf("stop container %s: %w", id, err)
			}
			return nil
		}
	}
	if err := e.remove(ctx, cid, inst); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	if serving {
		e.prepareStandby(inst.specOf())
	}
	return nil
}

// remove stops and deletes container cid, then tears its network namespace down. inst,
// when not nil, is the instance watching it.
func (e *Executor) remove(ctx context.Context, cid string, inst *instance) error {
	container, err := e.client.LoadContainer(ctx, cid)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load container: %w", err)
	}
	var nsPath string
	if info, err := container.Info(ctx, containerd.WithoutRefreshedMetadata); err == nil {
		nsPath = info.Labels[LabelNetNS]
	}

	var task containerd.Task
	var exited <-chan struct{}
	if inst != nil && inst.task != nil && inst.waitCancel != nil {
		task, exited = inst.task, inst.done
	} else {
		// Attaching without streams opens no FIFO, but deleting the task removes them.
		task, err = container.Task(ctx, cio.NewAttach())
		if err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("load task: %w", err)
		}
	}

	// Once SIGTERM is sent, finish the job even if ctx ends: a half-stopped container
	// helps no one.
	cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.StopGrace+killWait+30*time.Second)
	defer cancel()
	if task != nil {
		if err := e.stopTask(ctx, cleanupCtx, task, exited); err != nil {
			return err
		}
		if _, err := task.Delete(cleanupCtx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task: %w", err)
		}
	}
	if err := container.Delete(cleanupCtx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container: %w", err)
	}
	if err := e.net.detach(cleanupCtx, nsPath); err != nil {
		return err
	}
	return nil
}

// stopTask ends a running task: SIGTERM, StopGrace (or until ctx ends), then SIGKILL to all
// its processes. exited, when not nil, closes when the task exits.
func (e *Executor) stopTask(ctx, cleanupCtx context.Context, task containerd.Task, exited <-chan struct{}) error {
	st, err := task.Status(cleanupCtx)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("task status: %w", err)
	}
	if st.Status != containerd.Running && st.Status != containerd.Paused {
		return nil // created (never started) or stopped: Delete with WithProcessKill does the rest
	}
	if exited == nil {
		waitC, err := task.Wait(cleanupCtx)
		if err != nil {
			return fmt.Errorf("wait for task: %w", err)
		}
		done := make(chan struct{})
		go func() { <-waitC; close(done) }()
		exited = done
	}
	if err := task.Kill(cleanupCtx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("send SIGTERM: %w", err)
	}
	grace := time.NewTimer(e.cfg.StopGrace)
	defer grace.Stop()
	select {
	case <-exited:
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	if err := task.Kill(cleanupCtx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("send SIGKILL: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("task did not exit %s after SIGKILL", killWait)
	}
}
