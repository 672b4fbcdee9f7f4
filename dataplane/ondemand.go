package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/tick"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
)

// onDemand serves components on this node without a placement. When the proxy finds no
// instance to reach (a component scaled to zero, or its nodes just died and their
// replacements are not running yet), it serves the request from a local instance of the
// active deployment. A wasm "instance" is a compiled module that instantiates a fresh guest
// per request, so keeping one costs little. A container component that may scale to zero
// (scale.min 0) gets one too: its first request is held, like Knative's activator, while
// the container starts and passes its readiness check, for at most Config.ColdStartWait
// (then 503 with Retry-After); the proxy's per-component gate bounds how many are held. The
// load those requests report brings a placement back through the autoscaler; idle
// on-demand instances are stopped by sweep.
type onDemand struct {
	dp *DataPlane
	mu sync.Mutex
	m  map[string]*odInstance // by deployment id
}

type odInstance struct {
	ready chan struct{} // closed once run or err is set
	run   v9rt.Instance
	err   error
	in    *instance // counts requests in flight, like a placement's instance
	used  time.Time
	// specIndex is the component's spec_index it started with (env, secrets, limits, the
	// module): a newer one replaces it, as a rollout replaces placed instances.
	specIndex uint64
	// failedAt is when the start failed (under onDemand.mu); zero if it did not.
	failedAt time.Time
}

// odIdle is how long an on-demand instance stays without requests; odIdleReplaced, how
// long an on-demand container does once its deployment runs placed somewhere.
const (
	odIdle         = 5 * time.Minute
	odIdleReplaced = 30 * time.Second
)

// DefaultColdStartWait is how long a request waits for an on-demand start when
// Config.ColdStartWait is zero.
const DefaultColdStartWait = 30 * time.Second

// serves reports whether a component gets on-demand instances on this node: a wasm one
// always, a container one when it may scale to zero and this node runs containers; never
// an exclusive one (that would be a second instance).
func (o *onDemand) serves(c *statev1.Component) bool {
	if c.ActiveDeploymentId == "" || c.GetSpec().GetExclusive() {
		return false
	}
	switch c.Runtime {
	case statev1.Runtime_RUNTIME_WASM:
		return true
	case statev1.Runtime_RUNTIME_CONTAINER:
		return c.GetSpec().GetScaleMin() == 0 && o.dp.rec.execs[c.Runtime] != nil
	}
	return false
}

// errStart wraps the error of a failed on-demand start.
var errStart = errors.New("start failed")

// handler returns the on-demand handler of a component. A request waits for the instance
// at most the cold-start wait; past it, or when the start failed, it gets a 503 with
// Retry-After that says which.
func (o *onDemand) handler(component string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := o.dp.cfg.ColdStartWait
		if wait <= 0 {
			wait = DefaultColdStartWait
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		h, err := o.get(ctx, component)
		cancel()
		if err != nil {
			retry, msg := 1, "v9: component \""+component+"\" has no running instance"
			switch {
			case errors.Is(err, errStart):
				retry, msg = int(odRetry/time.Second), msg+": starting one here failed (see its logs)"
			case r.Context().Err() == nil && errors.Is(err, context.DeadlineExceeded):
				msg += fmt.Sprintf(": one is starting here but was not ready within %s", wait)
			}
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// odRetry is how long a failed on-demand start is remembered before it is tried again.
const odRetry = 5 * time.Second

// get returns a handler for the component: an instance of its active deployment or, while
// that one cannot start (a broken version being rolled out), of the newest older ready
// deployment that still has placements running, which is what the cluster serves meanwhile.
func (o *onDemand) get(ctx context.Context, component string) (http.Handler, error) {
	c := o.dp.router.onDemand(component)
	if c == nil {
		return nil, fmt.Errorf("component %s not found", component)
	}
	var firstErr error
	for _, dep := range c.candidates {
		h, err := o.instance(ctx, c, dep)
		if err == nil {
			return h, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("component %s has no deployment to run", c.name)
	}
	return nil, firstErr
}

// instance returns the on-demand instance of one deployment, starting it if needed. A
// failed start is remembered for odRetry so that requests do not retry it one by one.
func (o *onDemand) instance(ctx context.Context, c *onDemandTarget, dep string) (http.Handler, error) {
	o.mu.Lock()
	if o.m == nil {
		o.m = map[string]*odInstance{}
	}
	specIndex := o.specIndex(c.id)
	od, ok := o.m[dep]
	if ok && od.failedAt != (time.Time{}) && time.Since(od.failedAt) > odRetry {
		ok = false
	}
	if ok && od.specIndex != specIndex {
		// Its environment is out of date: it never serves again, and stops once started.
		ok = false
		go o.stopStale(od)
	}
	if !ok {
		od = &odInstance{ready: make(chan struct{}), specIndex: specIndex}
		o.m[dep] = od
		go o.start(od, c, dep)
	}
	od.used = time.Now()
	o.mu.Unlock()
	select {
	case <-od.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if od.err != nil {
		return nil, od.err
	}
	return od.in.handler, nil
}

func (o *onDemand) start(od *odInstance, c *onDemandTarget, dep string) {
	defer close(od.ready)
	id := "ondemand-" + dep
	if od.specIndex != 0 { // one id per spec: stopping a stale one leaves its successor be
		id = fmt.Sprintf("%s-s%d", id, od.specIndex)
	}
	p := &statev1.Placement{Id: id, ComponentId: c.id, DeploymentId: dep}
	r := o.dp.rec
	spec, err := r.spec(p)
	ex := r.execs[c.rt]
	if err == nil && ex == nil {
		err = fmt.Errorf("this node has no executor for %s", c.rt)
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(o.dp.ctx, 2*time.Minute)
		od.run, err = ex.Start(ctx, spec)
		if err == nil && c.rt == statev1.Runtime_RUNTIME_CONTAINER {
			// A container takes traffic once it answers, as a placement's does.
			if err = ready(ctx, c.rt, r.healthPath(p), od.run, o.dp.cfg.ReadyTimeout); err != nil {
				if serr := ex.Stop(context.WithoutCancel(ctx), id); serr != nil {
					o.dp.log.Warn("stop on-demand instance that failed its readiness check", "instance", id, "err", serr)
				}
				od.run = nil
			}
		}
		cancel()
	}
	if err != nil {
		od.err = fmt.Errorf("%w: %w", errStart, err)
		o.mu.Lock()
		od.failedAt = time.Now()
		o.mu.Unlock()
		o.dp.log.Warn("on-demand instance", "component", c.name, "deployment", dep, "err", err)
		o.dp.cfg.Logs.Append(c.name, id, "system", "on-demand start failed: "+err.Error())
		return
	}
	od.in = &instance{id: p.Id, component: c.name, deployment: dep, rt: c.rt, run: od.run, timeout: spec.Timeout}
	od.in.handler = r.wrap(od.in, od.run)
	o.dp.log.Info("on-demand instance started", "component", c.name, "deployment", dep)
}

func (o *onDemand) specIndex(componentID string) uint64 {
	c, _ := o.dp.state().ComponentByID(componentID)
	return c.GetSpecIndex()
}

func (o *onDemand) stopStale(od *odInstance) {
	<-od.ready
	if od.run == nil {
		return
	}
	o.stop(od)
}

// stop drains an on-demand instance, already out of the map, and stops it.
func (o *onDemand) stop(od *odInstance) {
	o.dp.rec.drain(od.in)
	if ex := o.dp.rec.execs[od.in.rt]; ex != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := ex.Stop(ctx, od.in.id); err != nil {
			o.dp.log.Warn("stop on-demand instance", "instance", od.in.id, "err", err)
		}
	}
}

// sweep stops on-demand instances that are idle or of a deployment neither active nor placed.
func (o *onDemand) sweep(now time.Time) {
	o.mu.Lock()
	idle := len(o.m) == 0
	o.mu.Unlock()
	if idle {
		return
	}
	active := map[string]bool{} // active deployments, and older ones still placed (rollouts)
	placed := map[string]bool{} // deployments with a placement running somewhere
	o.dp.state().View(func(v fsm.View) {
		v.Components(func(c *statev1.Component) {
			active[c.ActiveDeploymentId] = c.Desired == statev1.DesiredState_DESIRED_STATE_RUNNING
		})
		v.Placements(func(p *statev1.Placement) {
			if p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
				active[p.DeploymentId] = true
				placed[p.DeploymentId] = placed[p.DeploymentId] || p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING
			}
		})
	})
	o.mu.Lock()
	var stop []*odInstance
	for dep, od := range o.m {
		select {
		case <-od.ready:
		default:
			continue // still starting
		}
		idle := odIdle
		if od.in != nil && od.in.rt == statev1.Runtime_RUNTIME_CONTAINER && placed[dep] {
			// The autoscaler brought a placement back: the container started on demand
			// is a second one, kept only while requests still reach it.
			idle = odIdleReplaced
		}
		if !active[dep] || now.Sub(od.used) > idle {
			delete(o.m, dep)
			if od.run != nil {
				stop = append(stop, od)
			}
		}
	}
	o.mu.Unlock()
	for _, od := range stop {
		o.stop(od)
	}
}

// sweepTables are the tables sweep reads.
var sweepTables = []fsm.Table{fsm.TableComponents, fsm.TablePlacements}

// loop sweeps every minute and at every change of the tables sweep reads (at most once a
// second).
func (o *onDemand) loop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	st := o.dp.state() // watch the store read: the view wakes its waiters when left
	idx := st.TableIndex(sweepTables...)
	for {
		if !o.dp.waitTables(ctx, st, idx, sweepTables, t.C, nil) {
			return
		}
		// Watch from before the sweep, so that a change during it or the pause below
		// brings another sweep.
		st = o.dp.state()
		idx = st.TableIndex(sweepTables...)
		o.sweep(time.Now())
		if !tick.Sleep(ctx, time.Second) {
			return
		}
	}
}
