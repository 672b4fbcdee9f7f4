package node

import (
	"context"
	"net/http"
	"sync"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
)

// onDemand serves wasm components on this node without a placement. When the proxy finds
// no instance to reach (a component scaled to zero, or its nodes just died and their
// replacements are not running yet), it serves the request from a local instance of the
// active deployment. A wasm "instance" is a compiled module that instantiates a fresh guest
// per request, so keeping one costs little; idle ones are closed by sweep.
type onDemand struct {
	n  *Node
	mu sync.Mutex
	m  map[string]*odInstance // by deployment id
}

type odInstance struct {
	ready chan struct{} // closed once run or err is set
	run   v9rt.Instance
	err   error
	in    *instance // counts requests in flight, like a placement's instance
	used  time.Time
}

// odIdle is how long an on-demand instance stays without requests.
const odIdle = 5 * time.Minute

// handler returns the on-demand handler of a component.
func (o *onDemand) handler(component string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, err := o.get(r.Context(), component)
		if err != nil {
			o.n.log.Warn("on-demand instance", "component", component, "err", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "v9: component \""+component+"\" has no running instance", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (o *onDemand) get(ctx context.Context, component string) (http.Handler, error) {
	store := o.n.fsm.Store
	c, err := store.Component(component)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	if o.m == nil {
		o.m = map[string]*odInstance{}
	}
	od, ok := o.m[c.ActiveDeploymentId]
	if !ok {
		od = &odInstance{ready: make(chan struct{})}
		o.m[c.ActiveDeploymentId] = od
		go o.start(od, c)
	}
	od.used = time.Now()
	o.mu.Unlock()
	select {
	case <-od.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if od.err != nil {
		o.mu.Lock()
		if o.m[c.ActiveDeploymentId] == od {
			delete(o.m, c.ActiveDeploymentId) // the next request tries again
		}
		o.mu.Unlock()
		return nil, od.err
	}
	return od.in.handler, nil
}

func (o *onDemand) start(od *odInstance, c *statev1.Component) {
	defer close(od.ready)
	p := &statev1.Placement{Id: "ondemand-" + c.ActiveDeploymentId, ComponentId: c.Id, DeploymentId: c.ActiveDeploymentId}
	r := o.n.rec
	spec, err := r.spec(p)
	if err != nil {
		od.err = err
		return
	}
	ex := r.execs[statev1.Runtime_RUNTIME_WASM]
	ctx, cancel := context.WithTimeout(o.n.ctx, 2*time.Minute)
	defer cancel()
	od.run, od.err = ex.Start(ctx, spec)
	if od.err == nil {
		od.in = &instance{id: p.Id, component: c.Name, rt: c.Runtime, run: od.run}
		od.in.handler = r.wrap(od.in, od.run)
		o.n.log.Info("on-demand instance started", "component", c.Name, "deployment", c.ActiveDeploymentId)
	}
}

// sweep stops on-demand instances that are idle or no longer of an active deployment.
func (o *onDemand) sweep(now time.Time) {
	o.mu.Lock()
	idle := len(o.m) == 0
	o.mu.Unlock()
	if idle {
		return
	}
	active := map[string]bool{}
	for _, c := range o.n.fsm.Store.Components() {
		active[c.ActiveDeploymentId] = c.Desired == statev1.DesiredState_DESIRED_STATE_RUNNING
	}
	o.mu.Lock()
	var stop []*odInstance
	for dep, od := range o.m {
		select {
		case <-od.ready:
		default:
			continue // still starting
		}
		if !active[dep] || now.Sub(od.used) > odIdle {
			delete(o.m, dep)
			if od.run != nil {
				stop = append(stop, od)
			}
		}
	}
	o.mu.Unlock()
	ex := o.n.rec.execs[statev1.Runtime_RUNTIME_WASM]
	for _, od := range stop {
		o.n.rec.drain(od.in)
		_ = ex.Stop(context.Background(), od.in.id)
	}
}

// loop sweeps every minute and at every change of the state.
func (o *onDemand) loop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		ch, _ := o.n.fsm.Store.Changed()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
		}
		o.sweep(time.Now())
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
}
