package sched

import (
	"math"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Load is one component's demand summed over the nodes' latest reports.
type Load struct {
	InFlight float64 // requests in flight at the peak of the last interval
	Rate     float64 // requests per second
}

// Policy tunes Autoscale.
type Policy struct {
	// Target is the in-flight requests per instance to size for, as a fraction of the
	// component's concurrency (limits.concurrency). Default 0.7.
	Target float64
	// UpAt and DownAt are the hysteresis band on utilization (in-flight / (replicas ×
	// concurrency)): scale up only above UpAt, down only below DownAt. Defaults 0.8, 0.3.
	UpAt, DownAt float64
	// UpCooldown and DownCooldown are the least time since the component's last change
	// before the next scale up, or down. Defaults 1s and 30s.
	UpCooldown, DownCooldown time.Duration
}

// DownCooldownOrDefault is DownCooldown with its default applied.
func (p Policy) DownCooldownOrDefault() time.Duration { return p.withDefaults().DownCooldown }

func (p Policy) withDefaults() Policy {
	if p.Target <= 0 {
		p.Target = 0.7
	}
	if p.UpAt <= 0 {
		p.UpAt = 0.8
	}
	if p.DownAt <= 0 {
		p.DownAt = 0.3
	}
	if p.UpCooldown <= 0 {
		p.UpCooldown = time.Second
	}
	if p.DownCooldown <= 0 {
		p.DownCooldown = 30 * time.Second
	}
	return p
}

// Decision moves a component's replicas.
type Decision struct {
	Component string // name
	From, To  uint32
}

// defaultConcurrency is limits.concurrency when a spec leaves it out.
const defaultConcurrency = 50

// Autoscale decides replica changes from load. It is pure: the same state, load, last
// changes and now give the same decisions. Only running components with an active
// deployment, scale.min < scale.max and not exclusive are scaled. A component may go to zero
// replicas (min 0) once idle: its requests are then served on demand by the proxy of the
// node they reach (wasm at once, a container once started while the proxy holds them). lastChange holds when the autoscaler last changed each component (by
// name); the component's own update time counts as a change as well. A manual
// `v9 component scale` is thus a starting point the autoscaler moves from after its
// cool-down; min = max pins the replicas.
func Autoscale(s *statev1.State, load map[string]Load, lastChange map[string]time.Time, now time.Time, p Policy) []Decision {
	p = p.withDefaults()
	var out []Decision
	for _, c := range s.Components {
		spec := c.GetSpec()
		lo, hi := spec.GetScaleMin(), spec.GetScaleMax()
		if c.Desired != statev1.DesiredState_DESIRED_STATE_RUNNING || c.ActiveDeploymentId == "" || spec.GetExclusive() || lo >= hi {
			continue
		}
		conc := float64(spec.GetConcurrency())
		if conc <= 0 {
			conc = defaultConcurrency
		}
		l := load[c.Name]
		cur := c.Replicas
		want := uint32(math.Ceil(l.InFlight / (conc * p.Target)))
		if want == 0 && l.Rate > 0 {
			want = 1 // traffic, however light, keeps one instance warm
		}
		want = min(max(want, lo), hi)
		// A change through the API (a manual scale, a new spec) restarts the cool-down too:
		// the autoscaler takes over from there, not at once.
		last, ok := lastChange[c.Name]
		if ut := c.GetUpdateTime(); ut != nil && ut.AsTime().After(last) {
			last, ok = ut.AsTime(), true
		}
		since := time.Duration(math.MaxInt64)
		if ok {
			since = now.Sub(last)
		}
		util := l.InFlight / (float64(max(cur, 1)) * conc)
		switch {
		case want > cur && (util > p.UpAt || cur == 0 || cur < lo) && since >= p.UpCooldown:
		case want < cur && util < p.DownAt && since >= p.DownCooldown:
		default:
			continue
		}
		out = append(out, Decision{Component: c.Name, From: cur, To: want})
	}
	return out
}
