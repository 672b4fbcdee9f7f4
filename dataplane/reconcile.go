package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/proxy"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
	v9spec "github.com/velocity9/v9/spec"
)

// The reconciler makes this node run what the committed state says it owns: it starts
// instances of placements desired RUN, stops those desired STOP or gone, restarts crashed
// ones with backoff, and reports what it observes back through the leader. It works from
// the local replica, so it keeps instances running while the cluster has no leader.
type reconciler struct {
	dp    *DataPlane
	execs map[statev1.Runtime]v9rt.Executor

	mu    sync.Mutex
	inst  map[string]*instance // by placement id
	dirty bool                 // an instance became routable or stopped being so: publish
	kick  chan struct{}
	// drainMin is the least a stop drains (drainWait; tests shorten it).
	drainMin time.Duration
}

type instance struct {
	id          string
	component   string
	deployment  string
	rt          statev1.Runtime
	handler     http.Handler // nil until running
	run         v9rt.Instance
	observed    statev1.PlacementObserved
	reason      string
	busy        bool // a start or stop is in flight
	stopping    bool
	urgent      bool // stop without waiting for requests in flight (exclusive instances)
	fenced      bool // stopped because the lease ran out: reported FAILED, not STOPPED
	cancelStart context.CancelFunc
	inFlight    atomic.Int64 // requests being served by this instance
	// closed is set by a stop as it starts draining: a request that took the instance from
	// an older routing snapshot (it may have queued at the proxy's gate since) is then
	// answered NoInstance, never served by a stopped instance. Set before inFlight is read,
	// and read after inFlight is raised (both sequentially consistent), so a request and a
	// drain cannot both miss each other. One per run (wrap), so a restart starts open.
	closed     *atomic.Bool
	timeout    time.Duration // the component's request timeout it started with: how long a stop drains
	failures   int           // failures in all: the restart backoff
	streak     int           // starts failed in a row (a crash after a good start counts): reported with FAILED
	retryAt    time.Time
	reportedAt time.Time
}

const (
	restartBackoffMin = 500 * time.Millisecond
	restartBackoffMax = 30 * time.Second
	reconcileTick     = 500 * time.Millisecond
	reportEvery       = time.Second // resend a report the state has not taken yet
	// maxReportedFailures caps the failures in a row a node reports (Placement.failures):
	// enough for the scheduler's RescheduleAfter and for a backoff at its longest.
	maxReportedFailures = 8
)

func newReconciler(dp *DataPlane, execs map[statev1.Runtime]v9rt.Executor) *reconciler {
	return &reconciler{dp: dp, execs: execs, inst: map[string]*instance{}, kick: make(chan struct{}, 1), drainMin: drainWait}
}

func (r *reconciler) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// loop runs until ctx ends: once at every change of the state, and on a tick for retries.
func (r *reconciler) loop(ctx context.Context) {
	r.adopt(ctx)
	t := time.NewTicker(reconcileTick)
	defer t.Stop()
	for {
		st := r.dp.state() // watch the store read: the view wakes its waiters when left
		idx := st.TableIndex(reconcileTables...)
		r.reconcile(ctx)
		r.pruneStandby(ctx)
		if !r.dp.waitTables(ctx, st, idx, reconcileTables, t.C, r.kick) {
			return
		}
	}
}

// reconcileTables are the tables the reconciler reads: its placements and what they run.
var reconcileTables = []fsm.Table{fsm.TablePlacements, fsm.TableComponents, fsm.TableDeployments}

// adopt takes over instances an earlier agent left running (containers), once this node
// has caught up with the cluster; without a leader it adopts what its replica knows and
// leaves the rest alone until it knows better.
func (r *reconciler) adopt(ctx context.Context) {
	for rt, ex := range r.execs {
		ad, ok := ex.(v9rt.Adopter)
		if !ok {
			continue
		}
		ids, err := ad.Running(ctx)
		if err != nil {
			r.dp.log.Warn("list running instances", "runtime", rt, "err", err)
			continue
		}
		if len(ids) == 0 {
			continue
		}
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		caughtUp := r.dp.cfg.Cluster.Barrier(bctx) == nil
		cancel()
		mine := map[string]*statev1.Placement{}
		for _, p := range r.dp.state().Placements(r.dp.cfg.NodeID) {
			mine[p.Id] = p
		}
		for _, id := range ids {
			p := mine[id]
			if p == nil || p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
				if caughtUp {
					r.dp.log.Info("stopping instance this node no longer owns", "placement", id)
					_ = ex.Stop(ctx, id)
				}
				continue
			}
			spec, err := r.spec(p)
			if err != nil {
				r.dp.log.Warn("adopt", "placement", id, "err", err)
				continue
			}
			run, err := ad.Adopt(ctx, spec)
			if err != nil {
				r.dp.log.Warn("adopt", "placement", id, "err", err)
				continue
			}
			r.mu.Lock()
			in := &instance{id: id, component: spec.Component, deployment: p.DeploymentId, rt: rt, run: run,
				observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING, timeout: spec.Timeout}
			in.handler = r.wrap(in, run)
			r.inst[id] = in
			r.dirty = true
			r.publish()
			r.mu.Unlock()
			r.dp.log.Info("adopted running instance", "placement", id, "component", spec.Component)
		}
	}
}

func (r *reconciler) reconcile(ctx context.Context) {
	store := r.dp.state()
	// The lease first, the placements after: a lease renewed after this read comes with a
	// state at least as new as the placements read below.
	leaseHeld := r.dp.leaseHeld()
	mine := store.Placements(r.dp.cfg.NodeID)
	if r.dp.IsRemoved() {
		mine = nil // a removed node owns nothing: everything stops
	}
	now := time.Now()
	seen := map[string]bool{}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.publish() // before the unlock: a stopping instance leaves the table before it drains
	for _, p := range mine {
		seen[p.Id] = true
		in := r.inst[p.Id]
		switch p.Desired {
		case statev1.PlacementDesired_PLACEMENT_DESIRED_RUN:
			c, _ := store.ComponentByID(p.ComponentId)
			if in == nil {
				in = &instance{id: p.Id, rt: c.GetRuntime(), component: c.GetName(), deployment: p.DeploymentId}
				if p.Failures > 0 {
					// A replacement of a placement that kept failing elsewhere (sched
					// reschedules it): it backs off before its first start as a restart there
					// would have.
					in.failures, in.streak = int(p.Failures), int(p.Failures)
					in.retryAt = now.Add(backoff(in.failures))
				}
				r.inst[p.Id] = in
			}
			// A placement the leader declared lost is not ours any more; an exclusive one
			// must not run while this node cannot renew its lease (it may be replaced
			// elsewhere once the leader's TTL runs out).
			exclusive := c.GetSpec().GetExclusive()
			fenced := exclusive && !leaseHeld
			if p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST || fenced {
				if !in.stopping && (in.run != nil || in.busy) {
					// An exclusive instance may be replaced elsewhere: it stops at once.
					in.stopping, in.urgent, in.fenced = true, exclusive, fenced
					r.dirty = true
					if fenced {
						r.dp.log.Warn("lease lost: stopping exclusive instance", "placement", p.Id, "component", in.component)
						r.dp.cfg.Logs.Append(in.component, in.id, "system", "lease lost: stopping exclusive instance")
					}
					if in.busy && in.cancelStart != nil {
						in.cancelStart() // a start under way is abandoned, its container removed
					}
					go r.stop(ctx, in)
				}
				break
			}
			if in.run != nil && !in.busy {
				select {
				case <-in.run.Done():
					in.failures++
					in.streak++
					in.observed, in.reason = statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, errString(in.run.Err(), "instance stopped")
					in.run, in.handler = nil, nil
					r.dirty = true
					in.retryAt = now.Add(backoff(in.failures))
					r.dp.cfg.Logs.Append(in.component, in.id, "system", "instance failed: "+in.reason+"; restarting in "+backoff(in.failures).String())
				default:
				}
			}
			if in.run == nil && !in.busy && !now.Before(in.retryAt) {
				in.busy, in.stopping = true, false
				if in.observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED {
					in.observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_STARTING
				}
				sctx, cancel := context.WithCancel(ctx)
				in.cancelStart = cancel
				go r.start(sctx, p, exclusive)
			}
		case statev1.PlacementDesired_PLACEMENT_DESIRED_STOP:
			if in == nil {
				in = &instance{id: p.Id, observed: p.Observed}
				if p.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST {
					in.observed = statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED
				}
				r.inst[p.Id] = in
			}
			if !in.stopping && (in.run != nil || in.busy) {
				in.stopping, r.dirty = true, true
				go r.stop(ctx, in)
			} else if in.run == nil && !in.busy && in.observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST {
				// Nothing runs (a failed instance waiting out its backoff, or a start that
				// failed): the placement is stopped as far as this node is concerned.
				in.observed, in.reason = statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED, ""
			}
		}
		r.report(ctx, p, in, now)
	}
	for id, in := range r.inst {
		if seen[id] {
			continue
		}
		if in.run != nil && !in.stopping {
			in.stopping, r.dirty = true, true
			go r.stop(ctx, in)
		} else if in.run == nil && !in.busy {
			delete(r.inst, id)
		}
	}
}

func backoff(failures int) time.Duration {
	d := restartBackoffMin
	for i := 1; i < failures && d < restartBackoffMax; i++ {
		d *= 2
	}
	return min(d, restartBackoffMax)
}

func errString(err error, def string) string {
	if err == nil {
		return def
	}
	return err.Error()
}

// report sends the observed state of a placement to the leader when the committed state
// does not hold it yet. Called with r.mu held.
func (r *reconciler) report(ctx context.Context, p *statev1.Placement, in *instance, now time.Time) {
	var failures uint32
	if in.observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED {
		failures = uint32(min(in.streak, maxReportedFailures))
	}
	if in.observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_UNSPECIFIED ||
		(p.Observed == in.observed && p.Reason == in.reason && (failures == 0 || p.Failures == failures)) ||
		now.Sub(in.reportedAt) < reportEvery/4 {
		return
	}
	in.reportedAt = now
	cmd := &statev1.Command{Op: &statev1.Command_SetPlacementObserved{SetPlacementObserved: &statev1.SetPlacementObserved{
		Id: p.Id, Observed: in.observed, Reason: in.reason, Failures: failures,
	}}}
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := r.dp.cfg.Cluster.Apply(cctx, cmd); err != nil {
			r.dp.log.Debug("report placement", "placement", p.Id, "err", err)
		}
	}()
}

func (r *reconciler) start(ctx context.Context, p *statev1.Placement, exclusive bool) {
	spec, err := r.spec(p)
	var run v9rt.Instance
	var ex v9rt.Executor
	if err == nil {
		ex = r.execs[r.runtimeOf(p)]
		if ex == nil {
			err = fmt.Errorf("this node cannot run %s components", strings.ToLower(strings.TrimPrefix(r.runtimeOf(p).String(), "RUNTIME_")))
		}
	}
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		run, err = ex.Start(sctx, spec)
		if err == nil {
			// Serving only once ready: a version that cannot answer never takes traffic.
			if rerr := ready(sctx, r.runtimeOf(p), r.healthPath(p), run, r.dp.cfg.ReadyTimeout); rerr != nil {
				if serr := ex.Stop(context.WithoutCancel(sctx), p.Id); serr != nil {
					r.dp.log.Warn("stop instance that failed its readiness check", "placement", p.Id, "err", serr)
				}
				run, err = nil, rerr
			}
		}
		cancel()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.publish()
	in := r.inst[p.Id]
	if in == nil {
		in = &instance{id: p.Id}
		r.inst[p.Id] = in
	}
	in.busy, in.cancelStart = false, nil
	if err != nil {
		in.stopping = false
		in.failures++
		in.streak++
		in.observed, in.reason = statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, err.Error()
		in.retryAt = time.Now().Add(backoff(in.failures))
		r.dp.log.Warn("instance failed to start", "placement", p.Id, "component", spec.Component, "err", err)
		r.dp.cfg.Logs.Append(spec.Component, p.Id, "system", "start failed: "+err.Error())
		r.poke()
		return
	}
	in.run, in.handler, in.timeout = run, r.wrap(in, run), spec.Timeout
	in.streak = 0
	r.dirty = true
	// The lease may have run out, or the placement been declared lost, while it started.
	if exclusive && !in.stopping && (!r.dp.leaseHeld() || r.lost(p.Id)) {
		in.stopping, in.urgent, in.fenced = true, true, !r.dp.leaseHeld()
	}
	if in.stopping {
		// Never reported RUNNING: a reconcile pass before stop ends would tell the leader
		// it runs while it is being stopped (fenced, lost or no longer wanted).
		go r.stop(r.dp.ctx, in)
	} else {
		in.observed, in.reason = statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING, ""
	}
	r.dp.cfg.Logs.Append(spec.Component, p.Id, "system", "instance running on "+r.dp.cfg.NodeID)
	r.poke()
}

func (r *reconciler) stop(ctx context.Context, in *instance) {
	r.mu.Lock()
	ex := r.execs[in.rt]
	busy := in.busy
	r.mu.Unlock()
	if busy {
		return // start() sees stopping and calls stop again when it ends
	}
	var err error
	if ex != nil {
		timeout := time.Minute
		if in.urgent {
			// Fencing: the instance must be gone well before the leader's TTL runs out.
			timeout = r.dp.cfg.FenceBudget / 2
			in.close()
		} else {
			r.drain(in)
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err = ex.Stop(sctx, in.id)
		cancel()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.publish()
	in.stopping, in.urgent, r.dirty = false, false, true
	if err != nil {
		in.fenced = false
		in.reason = "stop: " + err.Error()
		r.dp.log.Warn("stop instance", "placement", in.id, "err", err)
		return
	}
	in.run, in.handler = nil, nil
	in.observed, in.reason = statev1.PlacementObserved_PLACEMENT_OBSERVED_STOPPED, ""
	if in.fenced {
		// Still desired RUN: not "stopped" (which the scheduler may read as gone for good)
		// but failed, until the lease comes back and it starts again.
		in.observed, in.reason = statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, "stopped: lease lost (this node could not reach the leader)"
		in.fenced = false
	}
	r.poke()
}

// lost reports whether the local replica says placement id was declared lost.
func (r *reconciler) lost(id string) bool {
	for _, p := range r.dp.state().Placements(r.dp.cfg.NodeID) {
		if p.Id == id {
			return p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST
		}
	}
	return false
}

func (r *reconciler) healthPath(p *statev1.Placement) string {
	st := r.dp.state()
	c, err := st.ComponentByID(p.ComponentId)
	if err != nil {
		return ""
	}
	if dep, err := st.Deployment(p.DeploymentId); err == nil {
		return specOf(c, dep).GetHealthPath()
	}
	return c.GetSpec().GetHealthPath()
}

func (r *reconciler) runtimeOf(p *statev1.Placement) statev1.Runtime {
	c, _ := r.dp.state().ComponentByID(p.ComponentId)
	return c.GetRuntime()
}

// spec builds what the executor needs, fetching the artifact from a peer if needed.
func (r *reconciler) spec(p *statev1.Placement) (v9rt.Spec, error) {
	store := r.dp.state()
	c, err := store.ComponentByID(p.ComponentId)
	if err != nil {
		return v9rt.Spec{}, err
	}
	dep, err := store.Deployment(p.DeploymentId)
	if err != nil {
		return v9rt.Spec{Component: c.Name}, err
	}
	dir, err := r.dp.artifactDir(r.dp.ctx, dep)
	if err != nil {
		return v9rt.Spec{Component: c.Name}, err
	}
	s := specOf(c, dep)
	env, err := r.dp.env(r.dp.ctx, c, s)
	if err != nil {
		return v9rt.Spec{Component: c.Name}, err
	}
	spec := v9rt.Spec{
		ID: p.Id, Component: c.Name, ComponentID: c.Id, DeploymentID: dep.Id, SpecIndex: c.GetSpecIndex(),
		Exclusive: c.GetSpec().GetExclusive(), Dir: dir, Digest: dep.ArtifactDigest,
		Env: env, MemoryBytes: s.GetMemoryBytes(), Timeout: time.Duration(s.GetTimeoutMs()) * time.Millisecond,
		Concurrency: int(s.GetConcurrency()),
		MaxBody:     int64(min(s.GetBodyBytes(), v9spec.MaxBody)),
		Wasm:        v9rt.WasmSpec{Module: s.GetWasm().GetModule(), ABI: s.GetWasm().GetAbi(), Reuse: int(s.GetWasm().GetReuse())},
		Container:   v9rt.ContainerSpec{Image: s.GetContainer().GetImage(), ImageArchive: s.GetContainer().GetArchive(), Command: s.GetContainer().GetCommand()},
	}
	comp, inst := c.Name, p.Id
	spec.Log = func(stream, line string) { r.dp.cfg.Logs.Append(comp, inst, stream, line) }
	return spec, nil
}

// specOf is what an instance of dep runs with: the component's spec for its active
// deployment; for an older one (still serving during a rollout, restarted after a crash, or
// an on-demand fallback), that deployment's own manifest with the user's settings over it,
// as its activation gave it, so that an old version never starts with the new version's
// module, image, environment or limits.
func specOf(c *statev1.Component, dep *statev1.Deployment) *statev1.ComponentSpec {
	if dep.Id == c.ActiveDeploymentId || dep.Spec == nil {
		return c.GetSpec()
	}
	s := v9spec.WithUser(dep.Spec, c.User)
	if fsm.ValidSpec(c.Runtime, s) != nil {
		return dep.Spec // what the activation would have given it (fsm setManifestSpec)
	}
	return s
}

// drainWait is how long a stopping instance may at least finish the requests it is serving.
const drainWait = 30 * time.Second

// drain waits until the instance, already out of the routing table, has no request in
// flight, so that nothing is scaled or rolled away mid-request: for as long as its
// requests may last (the component's limits.timeout, up to 15 minutes), at least
// drainWait (Cloud Run and Knative drain the same way).
func (r *reconciler) drain(in *instance) {
	deadline := time.Now().Add(max(r.drainMin, in.timeout))
	in.close()
	for in.inFlight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// close makes the instance's handler answer NoInstance from now on (see closed).
func (in *instance) close() {
	if in.closed != nil {
		in.closed.Store(true)
	}
}

// wrap adapts an instance to the proxy and counts its requests in flight. Container servers
// expect paths without the route prefix, so it is stripped for them (wasm guests get
// SCRIPT_NAME and PATH_INFO instead).
func (r *reconciler) wrap(in *instance, run v9rt.Instance) http.Handler {
	strip := in.rt == statev1.Runtime_RUNTIME_CONTAINER
	closed := new(atomic.Bool)
	in.closed = closed
	return r.dp.versions.Count(in.deployment, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		in.inFlight.Add(1)
		defer in.inFlight.Add(-1)
		if closed.Load() {
			proxy.NoInstance(w, in.component)
			return
		}
		if prefix := req.Header.Get(proxy.ScriptNameHeader); strip && prefix != "" {
			req.Header.Set("X-Forwarded-Prefix", prefix)
			p := strings.TrimPrefix(req.URL.Path, prefix)
			if p == "" || p[0] != '/' {
				p = "/" + p
			}
			req.URL.Path, req.URL.RawPath = p, ""
		}
		run.ServeHTTP(w, req)
	}))
}

// publish hands the router this node's routable instances (running, not stopping) by
// component, when they changed. Called with r.mu held, so that an instance told to stop
// leaves the routing table before it drains.
func (r *reconciler) publish() {
	if !r.dirty {
		return
	}
	r.dirty = false
	m := map[string][]localInstance{}
	for _, in := range r.inst {
		if in.handler != nil && !in.stopping {
			m[in.component] = append(m[in.component], localInstance{id: in.id, deployment: in.deployment, handler: in.handler})
		}
	}
	r.dp.router.setLocal(m)
}

// stopExclusive stops this node's instances of exclusive components at once, for a
// graceful agent shutdown.
func (r *reconciler) stopExclusive(ctx context.Context) {
	r.mu.Lock()
	var stop []*instance
	for _, in := range r.inst {
		c, err := r.dp.state().Component(in.component)
		if err == nil && c.GetSpec().GetExclusive() && in.run != nil {
			stop = append(stop, in)
		}
	}
	r.mu.Unlock()
	for _, in := range stop {
		if ex := r.execs[in.rt]; ex != nil {
			sctx, cancel := context.WithTimeout(ctx, r.dp.cfg.FenceBudget)
			if err := ex.Stop(sctx, in.id); err != nil {
				r.dp.log.Warn("stop exclusive instance at shutdown", "placement", in.id, "err", err)
			}
			cancel()
		}
	}
}

// stopAll stops every instance that does not outlive the agent (wasm); containers keep
// running for the next agent to adopt.
func (r *reconciler) closeAll() {
	for _, ex := range r.execs {
		if c, ok := ex.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
}

// running counts the instances of a component that are running, stopping ones included.
func (r *reconciler) running(component string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for _, in := range r.inst {
		if in.component == component && in.run != nil {
			k++
		}
	}
	return k
}
