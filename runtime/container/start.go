package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/plugin"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/velocity9/v9/runtime"
)

// readyPoll is how often Start asks the port whether the container is ready: a refused
// connection costs a fraction of a millisecond, and half the interval is the average time
// lost after the server starts listening.
const readyPoll = 2 * time.Millisecond

// Start imports or pulls the image, creates and starts the placement's container and
// returns once its port answers HTTP. A container left from an earlier run of the same
// placement (exited, or from a failed start) is removed first. If the process exits first,
// or the port stays silent for ReadyTimeout, the container is removed and the error says
// why, with the last lines of stderr.
func (e *Executor) Start(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	if spec.ID == "" {
		return nil, errors.New("start container: no placement id")
	}
	ctx = e.ctx(ctx)
	cid := e.containerID(spec.ID)

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errors.New("start container: the executor is closed")
	}
	e.starts.Add(1)
	defer e.starts.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.closing, cancel)()
	old := e.instances[spec.ID]
	switch {
	case old != nil && !old.exited():
		e.mu.Unlock()
		return nil, fmt.Errorf("start container: instance %s is already running", spec.ID)
	case e.starting[spec.ID]:
		e.mu.Unlock()
		return nil, fmt.Errorf("start container: instance %s is already starting", spec.ID)
	}
	delete(e.instances, spec.ID)
	e.starting[spec.ID] = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.starting, spec.ID)
		e.mu.Unlock()
	}()
	if old != nil {
		old.setStopping()
		if err := e.remove(ctx, old.cid, old); err != nil {
			return nil, fmt.Errorf("remove the earlier container %s: %w", old.cid, err)
		}
	}

	if inst, relabeled := e.claimStandby(ctx, spec); inst != nil {
		err := e.run(ctx, inst, relabeled)
		if err == nil {
			e.mu.Lock()
			e.instances[spec.ID] = inst
			e.mu.Unlock()
			return inst, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		inst.log.Warn("the standby container did not start; creating a new one", "err", err)
	}
	ri, err := e.image(ctx, spec)
	if err != nil {
		return nil, err
	}
	if len(spec.Container.Command) == 0 && !ri.runnable {
		return nil, fmt.Errorf("%w: image %s has no entrypoint or command; set [container] command", runtime.ErrBadArtifact, ri.img.Name())
	}
	inst, err := e.create(ctx, spec, ri, cid)
	e.net.refill()
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.instances[spec.ID] = inst
	e.mu.Unlock()
	return inst, nil
}

// create gives the container its network namespace, creates the container and its task,
// starts it and waits until it is ready.
func (e *Executor) create(ctx context.Context, spec runtime.Spec, ri readyImage, cid string) (*instance, error) {
	inst, err := e.prepare(ctx, spec, ri, cid, e.labels(spec))
	if err != nil {
		return nil, err
	}
	if err := e.run(ctx, inst, nil); err != nil {
		return nil, err
	}
	return inst, nil
}

// prepare gives a container its network namespace and creates the container and its task,
// not started: runc has set the container up and its init waits to run the process. The
// namespace comes from the pool, connected already; when the pool is empty it is connected
// to the bridge (CNI ADD) while containerd creates the container and the task. On error
// nothing is left behind.
func (e *Executor) prepare(ctx context.Context, spec runtime.Spec, ri readyImage, cid string, labels map[string]string) (_ *instance, err error) {
	type netResult struct {
		ip  netip.Addr
		err error
	}
	netc := make(chan netResult, 1)
	var nsPath string
	if ns, ok := e.net.take(); ok {
		nsPath = ns.path
		netc <- netResult{ip: ns.ip}
	} else {
		if nsPath, err = e.net.newNS(); err != nil {
			return nil, err
		}
		go func() {
			ip, err := e.net.setup(ctx, nsPath)
			netc <- netResult{ip, err}
		}()
	}
	var connected *netResult
	// awaitNet waits for the CNI ADD; every way out waits for it, so that nothing tears
	// the namespace down while the plugins still work on it.
	awaitNet := func() netResult {
		if connected == nil {
			r := <-netc
			connected = &r
		}
		return *connected
	}

	container, err := e.newContainer(ctx, spec, ri.img, cid, nsPath, labels)
	switch {
	case errdefs.IsAlreadyExists(err):
		// Left by an earlier agent or a failed start: replace it.
		if err = e.remove(ctx, cid, nil); err != nil {
			err = fmt.Errorf("remove the earlier container %s: %w", cid, err)
			break
		}
		// A snapshot without its container: left by a create that failed half way.
		if err = e.client.SnapshotService(e.snapshotter).Remove(ctx, cid); err != nil && !errdefs.IsNotFound(err) {
			err = fmt.Errorf("remove the earlier snapshot %s: %w", cid, err)
			break
		}
		container, err = e.newContainer(ctx, spec, ri.img, cid, nsPath, labels)
	case err != nil && ri.cached:
		// The image may have been removed behind the executor's back: look again.
		e.forgetImage(ri.img)
		if ri, err = e.image(ctx, spec); err == nil {
			container, err = e.newContainer(ctx, spec, ri.img, cid, nsPath, labels)
		}
	}
	if err != nil {
		awaitNet()
		if ctx.Err() != nil {
			// Cut short (the agent closing): containerd may have created the container all
			// the same, with the namespace in its label.
			cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if rerr := e.remove(cleanupCtx, cid, nil); rerr != nil {
				e.log.Warn("remove a container whose create was cut short", "container", cid, "err", rerr)
			}
			cancel()
		}
		if derr := e.net.detach(context.WithoutCancel(ctx), nsPath); derr != nil {
			e.log.Warn("tear down the network namespace of a container not created", "container", cid, "err", derr)
		}
		return nil, fmt.Errorf("create container: %w", err)
	}
	// From here on, removing the container tears its namespace down (LabelNetNS).
	inst := e.newInstance(spec, cid, "")
	defer func() {
		if err != nil {
			awaitNet()
			e.discard(ctx, inst)
		}
	}()

	task, err := container.NewTask(ctx, cio.NewCreator(
		cio.WithStreams(nil, inst.stdout, inst.stderr),
		cio.WithFIFODir(e.fifoDir)))
	if err != nil {
		return inst, fmt.Errorf("create task: %w", err)
	}
	inst.task = task
	if err := inst.watch(ctx, task); err != nil {
		return inst, err
	}
	net := awaitNet()
	if net.err != nil {
		return inst, net.err
	}
	inst.addr = netip.AddrPortFrom(net.ip, Port).String()
	return inst, nil
}

// run starts a prepared instance's task and waits until it is ready; on error its
// container is removed. relabeled, when not nil, gives the result of relabelling a claimed
// standby, done meanwhile.
func (e *Executor) run(ctx context.Context, inst *instance, relabeled <-chan error) (err error) {
	defer func() {
		if err != nil {
			e.discard(ctx, inst)
		}
	}()
	err = inst.task.Start(ctx)
	if relabeled != nil {
		if rerr := <-relabeled; rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("start task: %w", err)
	}
	if err := e.waitReady(ctx, inst); err != nil {
		return err
	}
	inst.log.Info("container ready", "addr", inst.addr, "pid", inst.task.Pid())
	return nil
}

// discard removes the container of an instance that will not serve, even if ctx has ended.
func (e *Executor) discard(ctx context.Context, inst *instance) {
	inst.setStopping()
	cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if rerr := e.remove(cleanupCtx, inst.cid, inst); rerr != nil {
		inst.log.Warn("remove a container that will not serve", "err", rerr)
	}
}

func (e *Executor) newContainer(ctx context.Context, spec runtime.Spec, img containerd.Image, cid, nsPath string, labels map[string]string) (containerd.Container, error) {
	opts, err := e.specOpts(spec, img, Port, nsPath)
	if err != nil {
		return nil, err
	}
	labels = maps.Clone(labels)
	labels[LabelNetNS] = nsPath
	return e.client.NewContainer(ctx, cid,
		containerd.WithImage(img),
		containerd.WithSnapshotter(e.snapshotter),
		containerd.WithNewSnapshot(cid, img),
		containerd.WithNewSpec(opts...),
		containerd.WithContainerLabels(labels),
		e.withRuntime(),
	)
}

// withRuntime has the runc shim run Config.RuntimeBinary when set (containerd's default
// runtime otherwise).
func (e *Executor) withRuntime() containerd.NewContainerOpts {
	if e.cfg.RuntimeBinary == "" {
		return func(context.Context, *containerd.Client, *containers.Container) error { return nil }
	}
	return containerd.WithRuntime(plugin.RuntimeRuncV2, &runcoptions.Options{BinaryName: e.cfg.RuntimeBinary})
}

// specOpts composes the container's OCI runtime spec.
func (e *Executor) specOpts(spec runtime.Spec, img containerd.Image, port int, nsPath string) ([]oci.SpecOpts, error) {
	env := make([]string, 0, len(spec.Env)+1)
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		if k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("%w: bad environment variable name %q", runtime.ErrBadArtifact, k)
		}
		if k == "PORT" {
			continue // v9's port wins
		}
		env = append(env, k+"="+spec.Env[k])
	}
	env = append(env, "PORT="+strconv.Itoa(port))
	memory := spec.MemoryBytes
	if memory == 0 {
		memory = DefaultMemoryBytes
	}

	opts := []oci.SpecOpts{oci.WithImageConfig(img)}
	if len(spec.Container.Command) > 0 {
		opts = append(opts, oci.WithProcessArgs(spec.Container.Command...))
	}
	opts = append(opts,
		oci.WithEnv(env),
		oci.WithHostname(strings.ToLower(cleanID(spec.Component, 63))),
		// Its own network namespace, set up by e.net: the container listens on its
		// address at $PORT, and reaches out through the bridge's firewall.
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: nsPath}),
		oci.WithMemoryLimit(memory),
		oci.WithNoNewPrivileges,
		seccomp.WithDefaultProfile(),
	)
	if !e.cfg.CompatSyscalls {
		opts = append(opts, nativeSeccomp)
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		opts = append(opts, oci.WithHostResolvconf)
	}
	if _, err := os.Stat("/etc/hosts"); err == nil {
		opts = append(opts, oci.WithHostHostsFile)
	}
	// The container's own cgroup, read-only, as Docker and CRI mount it: runtimes such as
	// the JVM and Node.js size themselves from the memory limit they find there.
	mounts := []specs.Mount{{
		Destination: "/sys/fs/cgroup",
		Type:        "cgroup",
		Source:      "cgroup",
		Options:     []string{"ro", "nosuid", "noexec", "nodev"},
	}}
	if spec.Dir != "" {
		dir, err := filepath.Abs(spec.Dir)
		if err != nil {
			return nil, fmt.Errorf("component directory: %w", err)
		}
		mounts = append(mounts, specs.Mount{
			Destination: "/app",
			Type:        "bind",
			Source:      dir,
			Options:     []string{"rbind", "ro"},
		})
	}
	return append(opts, oci.WithMounts(mounts)), nil
}

// nativeSeccomp limits the seccomp profile to the native architecture (see
// Config.CompatSyscalls). It must follow seccomp.WithDefaultProfile.
func nativeSeccomp(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
	if s.Linux != nil && s.Linux.Seccomp != nil {
		s.Linux.Seccomp.Architectures = nil
	}
	return nil
}

func (e *Executor) labels(spec runtime.Spec) map[string]string {
	l := map[string]string{LabelPlacement: spec.ID, LabelNode: e.cfg.NodeID}
	if spec.Exclusive {
		l[LabelExclusive] = "true"
	}
	for k, v := range map[string]string{LabelComponent: spec.Component, LabelDeployment: spec.DeploymentID, LabelDigest: spec.Digest} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

// waitReady polls the instance's port with HTTP GET / until anything answers, the task
// exits, or ReadyTimeout passes.
func (e *Executor) waitReady(ctx context.Context, inst *instance) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ReadyTimeout)
	defer cancel()
	client := &http.Client{Transport: e.transport, Timeout: 2 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	url := "http://" + inst.addr + "/"
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "v9-readiness")
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil
		}
		select {
		case <-inst.done:
			return inst.startError()
		case <-ctx.Done():
			select {
			case <-inst.done:
				return inst.startError()
			default:
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("container not ready within %s: nothing answered HTTP at %s ($PORT)%s",
					e.cfg.ReadyTimeout, inst.addr, lastLines(inst))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// startError words the exit of a container that never became ready.
func (i *instance) startError() error {
	i.mu.Lock()
	code, err := i.status, i.err
	i.mu.Unlock()
	if err != nil && !strings.HasPrefix(err.Error(), "exited with status") {
		return fmt.Errorf("container exited before it was ready: %w", err)
	}
	return fmt.Errorf("container exited with status %d before it was ready%s", code, lastLines(i))
}

// lastLines returns the last lines of stderr (or of stdout when stderr is empty), for an
// error message.
func lastLines(i *instance) string {
	lines, stream := i.stderr.Tail(), "stderr"
	if len(lines) == 0 {
		lines, stream = i.stdout.Tail(), "stdout"
	}
	if len(lines) == 0 {
		return ""
	}
	lines = lines[max(0, len(lines)-5):]
	for k, l := range lines {
		if len(l) > 200 {
			lines[k] = l[:200] + "…"
		}
	}
	return "; last " + stream + ":\n" + strings.Join(lines, "\n")
}
