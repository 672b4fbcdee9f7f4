package deployments

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/ghub"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Rollback makes an earlier ready deployment of a component active again, with the spec it
// was deployed with. Without a deployment id it picks the newest ready deployment created
// before the active one. The scheduler then rolls it out like any new deployment.
func (s *Service) Rollback(ctx context.Context, component, to string) (*deployv1.RollbackResponse, error) {
	if err := s.c.Writer.ConsistentBarrier(ctx); err != nil {
		return nil, err
	}
	c, err := s.c.State.Component(component)
	if err != nil {
		return nil, err
	}
	ds := s.c.State.Deployments(c.Id) // oldest first
	var target, active *statev1.Deployment
	for _, d := range ds {
		if d.Id == c.ActiveDeploymentId {
			active = d
		}
	}
	ready := statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY
	if to != "" {
		for _, d := range ds {
			if d.Id == to {
				target = d
			}
		}
		switch {
		case target == nil:
			return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("component %q has no deployment %q (see `v9 deployments list %s`)", component, to, component))
		case target.Status != ready:
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("deployment %s is %s: only a ready deployment can be activated", to, statusWord(target.Status)))
		case target.Id == c.ActiveDeploymentId:
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("deployment %s is already active", to))
		}
	} else {
		if active == nil {
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("component %q has no active deployment to roll back from", component))
		}
		for _, d := range ds {
			if d.Status == ready && d.CreateIndex < active.CreateIndex {
				target = d // the last one wins: the newest before the active one
			}
		}
		if target == nil {
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("component %q has no ready deployment older than the active one (%s)", component, active.Id))
		}
	}
	// One entry: the target becomes active with its own manifest's spec (the user's settings
	// kept over it). As two writes, the scheduler could roll the current version's instances
	// with the target's spec in between, and a failed second write would leave it so.
	idx, err := s.applyHere(ctx, &statev1.Command{Op: &statev1.Command_ActivateDeployment{ActivateDeployment: &statev1.ActivateDeployment{
		ComponentId: c.Id, DeploymentId: target.Id, Spec: target.Spec,
	}}})
	if err != nil {
		return nil, err
	}
	c, _ = s.c.State.Component(component)
	s.c.Logger.Info("rolled back", "component", component, "deployment", target.Id, "sha", target.CommitSha)
	s.c.Logs.Append(component, "", "system", fmt.Sprintf("rolled back to deployment %s", target.Id))
	return &deployv1.RollbackResponse{Component: c, Deployment: stripLog(target), Index: idx}, nil
}

// BuildLog returns a deployment and its build output.
func (s *Service) BuildLog(_ context.Context, id string) (*statev1.Deployment, string, error) {
	d, err := s.c.State.Deployment(id)
	if err != nil {
		return nil, "", err
	}
	log := d.BuildLog
	if log == "" && !ghub.FromGitHub(d) {
		log = errNotGitHub.Error() + "\n"
	}
	return stripLog(d), log, nil
}

func statusWord(s statev1.DeploymentStatus) string {
	if s == statev1.DeploymentStatus_DEPLOYMENT_STATUS_UNSPECIFIED {
		return "unknown"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "DEPLOYMENT_STATUS_"))
}

func stripLog(d *statev1.Deployment) *statev1.Deployment {
	if d != nil {
		d.BuildLog = ""
	}
	return d
}

// errNotGitHub is returned for build logs of uploads.
var errNotGitHub = errors.New("this deployment was uploaded, not built: it has no build log")
