package deployments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/id"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9spec "github.com/velocity9/v9/spec"
)

// MaxUploadBytes bounds one uploaded bundle.
const MaxUploadBytes = 512 << 20

// Writer is what the service needs of the node's write path.
type Writer interface {
	// Apply commits a command through the leader and returns its index.
	Apply(ctx context.Context, cmd *statev1.Command) (uint64, error)
	// ConsistentBarrier waits until this replica has applied everything committed before
	// the call.
	ConsistentBarrier(ctx context.Context) error
}

// Artifacts is where uploaded bundles are stored.
type Artifacts interface {
	Put(r io.Reader) (string, error)
	Dir(digest string) (string, error)
}

// LogSink receives the component's system log lines.
type LogSink interface {
	Append(component, instance, stream, text string)
}

// Config is what a Service is built from.
type Config struct {
	NodeID    string                             // recorded as the origin of uploaded artifacts
	State     *fsm.Store                         // this node's replica
	Writer    Writer                             // the node's write path
	Artifacts Artifacts                          // this node's artifact store
	Pin       func(digest string) (unpin func()) // keeps an artifact from garbage collection
	Logs      LogSink                            // component logs
	Logger    *slog.Logger                       // the node's logger
}

// Service answers the deployment procedures of one node.
type Service struct{ c Config }

// New returns a Service.
func New(c Config) *Service { return &Service{c: c} }

func invalidArg(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}

// Upload stores an uploaded bundle on this node, creates or updates the component its
// manifest names, and commits a Deployment that becomes active once it checks out. Peers
// fetch the artifact from this node (the deployment records it as the origin).
func (s *Service) Upload(ctx context.Context, meta *deployv1.UploadMeta, body io.Reader) (*deployv1.UploadResponse, error) {
	lr := &io.LimitedReader{R: body, N: MaxUploadBytes + 1}
	digest, err := s.c.Artifacts.Put(lr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if code := connect.CodeOf(err); code == connect.CodeResourceExhausted || code == connect.CodeDeadlineExceeded {
			return nil, connect.NewError(code, fmt.Errorf("receive bundle: %w", err)) // a message over the bound, a stalled stream
		}
		return nil, invalidArg("receive bundle: %v", err)
	}
	defer s.c.Pin(digest)()
	if lr.N <= 0 {
		return nil, invalidArg("bundle is larger than %d MiB", MaxUploadBytes>>20)
	}
	dir, err := s.c.Artifacts.Dir(digest)
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
	if err := s.c.Writer.ConsistentBarrier(ctx); err != nil {
		return nil, err
	}
	c, err := s.ensureComponent(ctx, m.Name, m.RuntimeEnum(), spec)
	if err != nil {
		return nil, err
	}
	d := &statev1.Deployment{
		Id: id.New(), ComponentId: c.Id, ArtifactDigest: digest, ArtifactOrigin: s.c.NodeID,
		CommitMessage: meta.GetCommitMessage(), Author: meta.GetAuthor(), Spec: spec,
		Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
	}
	if _, err := s.c.Writer.Apply(ctx, &statev1.Command{Op: &statev1.Command_CreateDeployment{CreateDeployment: &statev1.CreateDeployment{Deployment: d}}}); err != nil {
		return nil, err
	}
	// A deployment that cannot run fails here, with the reason, and the running version stays.
	if verr := deploy.CheckRunnable(m, dir); verr != nil {
		s.setDeploymentStatus(ctx, d.Id, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, verr.Error())
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("deployment %s failed: %v", d.Id, verr))
	}
	// Ready and active in one step, with the manifest's spec (the user's settings kept over
	// it): the running version's instances keep theirs until the new ones replace them.
	idx, err := s.applyHere(ctx, &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: d.Id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, Spec: spec, Activate: true,
	}}})
	if err != nil {
		return nil, err
	}
	c, _ = s.c.State.Component(m.Name)
	d, _ = s.c.State.Deployment(d.Id)
	s.c.Logs.Append(m.Name, "", "system", fmt.Sprintf("deployment %s (%s) activated", d.Id, digest))
	return &deployv1.UploadResponse{Component: c, Deployment: d, Index: idx}, nil
}

// applyHere commits cmd and waits until this node's replica has applied it, so that what
// the service reads next (and answers with) includes it.
func (s *Service) applyHere(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	idx, err := s.c.Writer.Apply(ctx, cmd)
	if err != nil {
		return 0, err
	}
	_, err = s.c.State.WaitForIndex(ctx, idx)
	return idx, err
}

func (s *Service) setDeploymentStatus(ctx context.Context, id string, st statev1.DeploymentStatus, msg string) error {
	_, err := s.c.Writer.Apply(ctx, &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: id, Status: st, Error: msg,
	}}})
	return err
}

// ensureComponent creates the component a manifest names, or updates its spec.
func (s *Service) ensureComponent(ctx context.Context, name string, rt statev1.Runtime, spec *statev1.ComponentSpec) (*statev1.Component, error) {
	c, err := s.c.State.Component(name)
	switch {
	case errors.Is(err, fsm.ErrNotFound):
		replicas := v9spec.InitialReplicas(spec)
		cmd := &statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
			Name: name, Runtime: rt, Spec: spec, ManifestSpec: spec, Replicas: replicas, Source: &statev1.Source{},
			Desired: statev1.DesiredState_DESIRED_STATE_RUNNING,
		}}}}
		if _, err := s.applyHere(ctx, cmd); err != nil {
			return nil, err
		}
		return s.c.State.Component(name)
	case err != nil:
		return nil, err
	}
	if c.Runtime != rt {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("component %q runs %s; a deployment cannot change its runtime (delete it first)", name, deploy.RuntimeName(c.Runtime)))
	}
	return c, nil // its spec changes with the activation of the new deployment
}
