package node

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/proxy"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// router is the proxy's view of where components run, rebuilt from the local replica at
// every change. Because it reads only the local replica, the proxy keeps routing with the
// last known table while the cluster has no leader.
type router struct {
	n     *Node
	table atomic.Pointer[map[string]*route]
	od    map[string]http.Handler // on-demand handlers by component name (loop only)
}

type route struct {
	paused   bool
	rt       statev1.Runtime
	active   string       // the active deployment
	remote   []string     // proxy addresses of other nodes running an instance
	older    []string     // the same, for older deployments (rebuild only)
	onDemand http.Handler // wasm: serve here when no instance is reachable
}

var _ proxy.Router = (*router)(nil)

func (r *router) Lookup(name string) proxy.Target {
	t := r.table.Load()
	if t == nil {
		return proxy.Target{}
	}
	rt, ok := (*t)[name]
	if !ok {
		return proxy.Target{}
	}
	tg := proxy.Target{Found: true, Paused: rt.paused, Remote: rt.remote, OnDemand: rt.onDemand}
	if !rt.paused && r.n.rec != nil {
		tg.Local = r.n.rec.local(name, rt.active)
		tg.InProcess = rt.rt == statev1.Runtime_RUNTIME_WASM
	}
	return tg
}

// routePause is the least time between two rebuilds of the routing table.
const routePause = 20 * time.Millisecond

func (r *router) loop(ctx context.Context) {
	for {
		ch, _ := r.n.fsm.Store.Changed()
		r.rebuild()
		// A rebuild reads the whole state: under a burst of writes, one per routePause.
		if !sleepCtx(ctx, routePause) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

func (r *router) rebuild() {
	if r.od == nil {
		r.od = map[string]http.Handler{}
	}
	t := map[string]*route{}
	r.n.fsm.Store.View(func(v fsm.View) {
		proxyOf := map[string]string{}
		v.Nodes(func(nd *statev1.Node) {
			if nd.Id != r.n.cfg.ID && nd.Status != statev1.NodeStatus_NODE_STATUS_DOWN && nd.ProxyAddr != "" {
				proxyOf[nd.Id] = nd.ProxyAddr
			}
		})
		byID := map[string]*route{}
		v.Components(func(c *statev1.Component) {
			rt := &route{paused: c.Desired == statev1.DesiredState_DESIRED_STATE_PAUSED, rt: c.Runtime, active: c.ActiveDeploymentId}
			if c.Runtime == statev1.Runtime_RUNTIME_WASM && c.ActiveDeploymentId != "" && !c.GetSpec().GetExclusive() {
				rt.onDemand = r.od[c.Name] // never for exclusive: that would be a second instance
				if rt.onDemand == nil {
					rt.onDemand = r.n.od.handler(c.Name)
					r.od[c.Name] = rt.onDemand
				}
			}
			byID[c.Id], t[c.Name] = rt, rt
		})
		v.Placements(func(p *statev1.Placement) {
			rt := byID[p.ComponentId]
			addr := proxyOf[p.NodeId]
			if rt == nil || addr == "" || p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_RUN ||
				p.Observed != statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
				return
			}
			if p.DeploymentId == rt.active {
				rt.remote = append(rt.remote, addr)
			} else {
				rt.older = append(rt.older, addr)
			}
		})
	})
	for _, rt := range t {
		// Once the active deployment runs somewhere, older ones get no more traffic.
		if len(rt.remote) == 0 {
			rt.remote, rt.older = rt.older, nil
		}
		slices.Sort(rt.remote) // a stable order for round robin
	}
	for name := range r.od {
		if t[name] == nil {
			delete(r.od, name)
		}
	}
	r.table.Store(&t)
}
