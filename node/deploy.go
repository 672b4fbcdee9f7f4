package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/fsm"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9spec "github.com/velocity9/v9/spec"
)

// MaxUploadBytes bounds one uploaded bundle.
const MaxUploadBytes = 512 << 20

func invalidArg(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}

// Upload stores an uploaded bundle on this node, creates or updates the component its
// manifest names, and commits a Deployment that becomes active once it checks out. Peers
// fetch the artifact from this node (the deployment records it as the origin).
func (n *Node) Upload(ctx context.Context, meta *deployv1.UploadMeta, body io.Reader) (*deployv1.UploadResponse, error) {
	lr := &io.LimitedReader{R: body, N: MaxUploadBytes + 1}
	digest, err := n.artifacts.Put(lr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, invalidArg("receive bundle: %v", err)
	}
	defer n.dp.Pin(digest)()
	if lr.N <= 0 {
		return nil, invalidArg("bundle is larger than %d MiB", MaxUploadBytes>>20)
	}
	dir, err := n.artifacts.Dir(digest)
	if err != nil {
		return nil, invalidArg("bundle is not a valid archive: %v", err)
	}
	m, err := deploy.LoadManifest(dir)
	if err != nil {
		return nil, invalidArg("%v", err)
	}
	if err := deploy.CheckFiles(m, dir); err != nil {
		return nil, invalidArg("%v", err)
	}
	if m.Runtime == "wasm" && m.Wasm.Build != "" {
		return nil, connect.NewError(connect.CodeUnimplemented, fmt.Errorf("wasm.build = %q: builds run on push-to-deploy; upload a prebuilt module (wasm.module)", m.Wasm.Build))
	}
	spec := m.Spec()
	if spec.Container != nil {
		spec.Container.Archive = m.Container.Archive
	}
	if err := n.ConsistentBarrier(ctx); err != nil {
		return nil, err
	}
	c, err := n.ensureComponent(ctx, m.Name, m.RuntimeEnum(), spec)
	if err != nil {
		return nil, err
	}
	d := &statev1.Deployment{
		Id: newID(), ComponentId: c.Id, ArtifactDigest: digest, ArtifactOrigin: n.cfg.ID,
		CommitMessage: meta.GetCommitMessage(), Author: meta.GetAuthor(), Spec: spec,
		Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
	}
	if _, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: d}}}); err != nil {
		return nil, err
	}
	// A deployment that cannot run fails here, with the reason, and the running version stays.
	if verr := deploy.CheckRunnable(m, dir); verr != nil {
		n.setDeploymentStatus(ctx, d.Id, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, verr.Error())
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("deployment %s failed: %v", d.Id, verr))
	}
	if err := n.setDeploymentStatus(ctx, d.Id, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ""); err != nil {
		return nil, err
	}
	idx, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_ActivateDeployment{ActivateDeployment: &statev1.ActivateDeployment{
		ComponentId: c.Id, DeploymentId: d.Id,
	}}})
	if err != nil {
		return nil, err
	}
	if _, err := n.fsm.Store.WaitForIndex(ctx, idx); err != nil {
		return nil, err
	}
	c, _ = n.fsm.Store.Component(m.Name)
	d, _ = n.fsm.Store.Deployment(d.Id)
	n.logs.Append(m.Name, "", "system", fmt.Sprintf("deployment %s (%s) activated", d.Id, digest))
	return &deployv1.UploadResponse{Component: c, Deployment: d, Index: idx}, nil
}

func (n *Node) setDeploymentStatus(ctx context.Context, id string, s statev1.DeploymentStatus, msg string) error {
	_, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: id, Status: s, Error: msg,
	}}})
	return err
}

// ensureComponent creates the component a manifest names, or updates its spec.
func (n *Node) ensureComponent(ctx context.Context, name string, rt statev1.Runtime, spec *statev1.ComponentSpec) (*statev1.Component, error) {
	c, err := n.fsm.Store.Component(name)
	switch {
	case errors.Is(err, fsm.ErrNotFound):
		replicas := v9spec.InitialReplicas(spec)
		cmd := &statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
			Name: name, Runtime: rt, Spec: spec, Replicas: replicas, Source: &statev1.Source{},
			Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
		}}}}
		idx, err := n.Apply(ctx, cmd)
		if err != nil {
			return nil, err
		}
		if _, err := n.fsm.Store.WaitForIndex(ctx, idx); err != nil {
			return nil, err
		}
		return n.fsm.Store.Component(name)
	case err != nil:
		return nil, err
	}
	if c.Runtime != rt {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("component %q runs %s; a deployment cannot change its runtime (delete it first)", name, deploy.RuntimeName(c.Runtime)))
	}
	if proto.Equal(c.Spec, spec) {
		return c, nil
	}
	idx, err := n.Apply(ctx, &statev1.Command{Op: &statev1.Command_UpdateComponentSpec{UpdateComponentSpec: &statev1.UpdateComponentSpec{Name: name, Spec: spec}}})
	if err != nil {
		return nil, err
	}
	if _, err := n.fsm.Store.WaitForIndex(ctx, idx); err != nil {
		return nil, err
	}
	return n.fsm.Store.Component(name)
}

// Deployments lists a component's deployments, newest first.
func (n *Node) Deployments(_ context.Context, component string) ([]*statev1.Deployment, error) {
	c, err := n.fsm.Store.Component(component)
	if err != nil {
		return nil, err
	}
	ds := n.fsm.Store.Deployments(c.Id)
	slices.Reverse(ds)
	for _, d := range ds {
		stripLog(d) // `v9 deployments logs ID` shows it
	}
	return ds, nil
}

// WatchDeployment streams a deployment's progress until it serves on all wanted replicas
// or fails.
func (n *Node) WatchDeployment(ctx context.Context, id string, send func(*deployv1.WatchResponse) error) error {
	var last string
	for {
		idx := n.fsm.Store.TableIndex(watchDeploymentTables...)
		d, err := n.fsm.Store.Deployment(id)
		if err != nil {
			return err
		}
		c, err := n.fsm.Store.ComponentByID(d.ComponentId)
		if err != nil {
			return err
		}
		resp := &deployv1.WatchResponse{Deployment: d, Wanted: c.Replicas}
		var failures []string
		for _, p := range n.fsm.Store.Placements("") {
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
		_, _ = n.fsm.Store.WaitTables(wctx, idx, watchDeploymentTables...)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// watchDeploymentTables are the tables WatchDeployment reads.
var watchDeploymentTables = []fsm.Table{fsm.TableDeployments, fsm.TableComponents, fsm.TablePlacements}
