package sched

import (
	"fmt"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/spec"
)

// Counts are the requests one version answered and how many of them were 5xx.
type Counts struct {
	Requests, Errors uint64
}

// Add sums counts.
func (c Counts) Add(o Counts) Counts { return Counts{c.Requests + o.Requests, c.Errors + o.Errors} }

// Since is what was counted after base (counters that went back, a restarted node's, count
// from zero).
func (c Counts) Since(base Counts) Counts {
	d := Counts{}
	if c.Requests >= base.Requests {
		d.Requests = c.Requests - base.Requests
	}
	if c.Errors >= base.Errors {
		d.Errors = c.Errors - base.Errors
	}
	return d
}

// Rate is the share of errors, 0 without requests.
func (c Counts) Rate() float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Errors) / float64(c.Requests)
}

// The canary's verdict rule: the new version fails when its 5xx rate exceeds the old
// version's by more than CanaryMargin (absolute) with at least CanaryMinErrors errors, so
// that one unlucky request among few does not fail a release.
const (
	CanaryMargin    = 0.05
	CanaryMinErrors = 3
	// CanaryEarlyErrors errors beyond the margin fail the canary before its window ends.
	CanaryEarlyErrors = 20
)

// Canary is a component whose active deployment is in its canary phase.
type Canary struct {
	ComponentID, Component string
	Deployment             string // the new version
	// Previous is the version the canary is judged against and falls back on: the newest
	// older proved one (ready, not itself superseded in a canary) with an instance running,
	// else the newest proved one that served (an exclusive component's old instance stops
	// before the new one starts); "" when there is none.
	Previous string
	// PreviousRuns: an instance of Previous runs (it keeps serving if the canary fails).
	PreviousRuns bool
	Percent      uint32
	Window       time.Duration
	// Ready: every wanted instance of the new version runs (passed its readiness check);
	// the window counts from then.
	Ready bool
	// Start is when its window began (StartCanary), zero before.
	Start time.Time
}

// Canaries lists the canaries under way, in component order.
func Canaries(s *statev1.State) []Canary {
	nRunning := map[string]int{}
	for _, p := range s.Placements {
		if p.Desired == run && p.Observed == running {
			nRunning[p.DeploymentId]++
		}
	}
	deps := map[string]*statev1.Deployment{}
	for _, d := range s.Deployments {
		deps[d.Id] = d
	}
	var out []Canary
	for _, c := range s.Components {
		active := deps[c.ActiveDeploymentId]
		if active == nil || !active.Canary || c.Desired != statev1.DesiredState_DESIRED_STATE_RUNNING {
			continue
		}
		pct, window := spec.Canary(c.Spec)
		k := Canary{ComponentID: c.Id, Component: c.Name, Deployment: active.Id, Percent: pct, Window: window,
			Ready: nRunning[active.Id] >= int(c.Replicas)}
		prev := previous(s.Deployments, c.Id, active.Id, func(id string) bool { return nRunning[id] > 0 })
		k.PreviousRuns = prev != nil
		if prev == nil {
			prev = lastServed(s.Deployments, c.Id, active.Id)
		}
		if prev != nil {
			k.Previous = prev.Id
		}
		if active.CanaryStart != nil {
			k.Start = active.CanaryStart.AsTime()
		}
		out = append(out, k)
	}
	return out
}

// Verdict is what to do with a canary now.
type Verdict int

// Verdicts.
const (
	Wait    Verdict = iota // the window is not over
	Promote                // the new version takes all the traffic
	Fail                   // the new version is failed; the old one keeps serving
)

// JudgeCanary decides a canary from what the proxies counted: the new version's counts
// (all from its canary) against its previous version's since the window began. It fails the new version as soon as
// it has CanaryEarlyErrors errors beyond the margin, and otherwise at the end of the window
// when its rate exceeds the old one's by CanaryMargin with at least CanaryMinErrors
// errors; else it promotes it at the end of the window. The message gives the figures.
func JudgeCanary(k Canary, fresh, old Counts, elapsed time.Duration) (Verdict, string) {
	worse := fresh.Rate()-old.Rate() > CanaryMargin
	figures := fmt.Sprintf("the new version answered %d of %d requests with 5xx (%.1f%%), the old one %d of %d (%.1f%%), %s into a %d%% canary of %s",
		fresh.Errors, fresh.Requests, 100*fresh.Rate(), old.Errors, old.Requests, 100*old.Rate(),
		elapsed.Round(100*time.Millisecond), k.Percent, k.Window)
	switch {
	case worse && fresh.Errors >= CanaryEarlyErrors:
		return Fail, figures
	case elapsed < k.Window:
		return Wait, ""
	case worse && fresh.Errors >= CanaryMinErrors:
		return Fail, figures
	}
	return Promote, figures
}
