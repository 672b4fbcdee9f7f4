package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// A change of env, secrets or limits rolls a component's instances (new ones first, then
// the old ones drain); `v9 component update` and `v9 secret set` wait for its outcome as
// `v9 deploy` waits for a rollout, unless --no-wait.

// rollFlags are the flags of a command that may roll instances.
type rollFlags struct {
	noWait  bool
	timeout time.Duration
}

func (f *rollFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.noWait, "no-wait", false, "return once the change is committed, without waiting for the instances to roll")
	fs.DurationVar(&f.timeout, "rollout-timeout", 2*time.Minute, "give up waiting if the instances have not rolled within this time")
}

// errRollTimeout is the cause of the context of a wait whose --rollout-timeout passed.
var errRollTimeout = errors.New("--rollout-timeout passed")

// rollState is where a roll of a component's instances to spec_index stands.
type rollState int

const (
	rolling    rollState = iota
	rolled               // every wanted instance runs the change
	rollIdle             // nothing runs (paused, scaled to zero, never deployed): the next start has it
	rollFailed           // the leader undid the change (spec_error says why)
	rollNewer            // a later change replaced it before it finished
)

// rollOutcome judges the roll to spec_index from a read of the component and its status.
func rollOutcome(c *statev1.Component, st *componentv1.ComponentStatus, specIndex uint64) (rollState, uint32) {
	var running uint32
	for _, p := range st.GetPlacements() {
		if p.DeploymentId == c.GetActiveDeploymentId() && p.SpecIndex == specIndex && p.Desired == statev1.PlacementDesired_PLACEMENT_DESIRED_RUN &&
			p.Observed == statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING {
			running++
		}
	}
	switch {
	case c.GetSpecIndex() > specIndex:
		return rollNewer, running
	case c.GetSpecIndex() < specIndex || c.GetSpecError() != "":
		return rollFailed, running
	case c.GetDesired() != statev1.DesiredState_DESIRED_STATE_RUNNING || c.GetActiveDeploymentId() == "" || st.GetWanted() == 0:
		return rollIdle, running
	case running >= st.GetWanted():
		return rolled, running
	}
	return rolling, running
}

// waitRoll waits, from index on, until the component's change at specIndex has rolled out,
// failed or been replaced, and says so on stderr; a failure is an error.
func (a *app) waitRoll(cmd *cobra.Command, f rollFlags, name string, specIndex, index uint64) error {
	ctx, cancel := context.WithTimeoutCause(cmd.Context(), f.timeout, errRollTimeout)
	defer cancel()
	c := a.client()
	last := ""
	for {
		res, err := c.Components.Get(ctx, connect.NewRequest(&componentv1.GetRequest{
			Name: name,
			Read: &componentv1.ReadOptions{MinIndex: index, WaitMs: 5000},
		}))
		if err != nil {
			if context.Cause(ctx) == errRollTimeout {
				return hintError{fmt.Errorf("the instances of %s did not roll within --rollout-timeout %s (last: %s)", name, f.timeout, orDash(last)),
					fmt.Sprintf("it may still roll: see `v9 component get %s`, or raise --rollout-timeout", name)}
			}
			if ctx.Err() != nil || connect.CodeOf(err) != connect.CodeUnavailable {
				return err
			}
			continue // a leader election or a restarting node: read again
		}
		comp, st := res.Msg.GetComponent(), res.Msg.GetStatus()
		state, running := rollOutcome(comp, st, specIndex)
		switch state {
		case rolled:
			fmt.Fprintf(cmd.ErrOrStderr(), "rolled out: %d of %d instances run the change\n", running, st.GetWanted())
			return nil
		case rollIdle:
			fmt.Fprintln(cmd.ErrOrStderr(), "no instance runs now: the next one to start has the change")
			return nil
		case rollNewer:
			fmt.Fprintln(cmd.ErrOrStderr(), "a later change replaced this one before it rolled out")
			return nil
		case rollFailed:
			return hintError{fmt.Errorf("the change of %s was undone: %s", name, orDash(comp.GetSpecError())),
				fmt.Sprintf("the instances from before keep serving; see `v9 logs %s`", name)}
		}
		if msg := fmt.Sprintf("rolling: %d of %d instances run the change", running, st.GetWanted()); msg != last {
			fmt.Fprintln(cmd.ErrOrStderr(), msg)
			last = msg
		}
		index = max(index, res.Msg.GetIndex()) + 1
	}
}
