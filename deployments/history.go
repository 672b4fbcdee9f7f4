package deployments

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/velocity9/v9/fsm"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
	v9spec "github.com/velocity9/v9/spec"
)

// Deployments lists a component's deployments, newest first, with the deployments table's
// index; with minIndex it first waits, at most wait, until that table reaches it (a
// blocking query: the console's history follows builds and rollouts without polling).
func (s *Service) Deployments(ctx context.Context, component string, minIndex uint64, wait time.Duration) ([]*statev1.Deployment, uint64, error) {
	if minIndex > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		_, _ = s.c.State.WaitTables(wctx, minIndex, fsm.TableDeployments) // what it has when the wait ends
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
	idx := s.c.State.TableIndex(fsm.TableDeployments)
	c, err := s.c.State.Component(component)
	if err != nil {
		return nil, 0, err
	}
	ds := s.c.State.Deployments(c.Id)
	slices.Reverse(ds)
	for _, d := range ds {
		stripLog(d) // `v9 deployments logs ID` shows it
	}
	return ds, idx, nil
}

// WatchDeployment streams a deployment's progress until it serves on all wanted replicas
// or fails.
func (s *Service) WatchDeployment(ctx context.Context, id string, send func(*deployv1.WatchResponse) error) error {
	var last string
	for {
		idx := s.c.State.TableIndex(watchDeploymentTables...)
		d, err := s.c.State.Deployment(id)
		if err != nil {
			return err
		}
		c, err := s.c.State.ComponentByID(d.ComponentId)
		if err != nil {
			return err
		}
		resp := &deployv1.WatchResponse{Deployment: d, Wanted: sched.Wanted(c, d)}
		var failures []string
		for _, p := range s.c.State.Placements("") {
			if p.DeploymentId != id {
				continue
			}
			resp.Placements = append(resp.Placements, p)
			if p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
				continue
			}
			switch p.Observed {
			case statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING:
				resp.Running++
			case statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED:
				failures = append(failures, p.NodeId+": "+p.Reason)
			}
		}
		active := c.ActiveDeploymentId == id
		switch {
		case d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED:
			resp.Done, resp.Message = true, "deployment failed: "+d.Error
		case c.Desired == statev1.DesiredState_DESIRED_STATE_PAUSED:
			resp.Done, resp.Message = true, "component is paused"
		case active && resp.Running >= resp.Wanted && d.Canary:
			pct, window := v9spec.Canary(c.Spec)
			resp.Message = fmt.Sprintf("canary: %d/%d instances running, taking %d%% of the requests for %s", resp.Running, resp.Wanted, pct, window)
		case active && resp.Running >= resp.Wanted:
			resp.Done, resp.Message = true, fmt.Sprintf("serving: %d/%d instances running", resp.Running, resp.Wanted)
		case !active && c.ActiveDeploymentId != "":
			resp.Done, resp.Message = true, "superseded by deployment "+c.ActiveDeploymentId
		default:
			resp.Message = fmt.Sprintf("rolling out: %d/%d instances running", resp.Running, resp.Wanted)
			if len(failures) > 0 {
				resp.Message += "; failing: " + failures[0]
			}
		}
		if key := resp.Message + fmt.Sprint(len(resp.Placements)); key != last {
			last = key
			if err := send(resp); err != nil {
				return err
			}
		}
		if resp.Done {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = s.c.State.WaitTables(wctx, idx, watchDeploymentTables...)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// watchDeploymentTables are the tables WatchDeployment reads.
var watchDeploymentTables = []fsm.Table{fsm.TableDeployments, fsm.TableComponents, fsm.TablePlacements}
