package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/fsm"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9spec "github.com/velocity9/v9/spec"
)

// Writer commits a command through the Raft leader.
type Writer interface {
	// Apply returns the command's log index.
	Apply(ctx context.Context, cmd *statev1.Command) (uint64, error)
	// ApplyResult returns the FSM's result: the index and the component the command wrote,
	// as it stood right after the command applied.
	ApplyResult(ctx context.Context, cmd *statev1.Command) (*fsm.Result, error)
}

// Reader gives access to this node's replica and to read barriers.
type Reader interface {
	Store() *fsm.Store
	// ConsistentBarrier returns once this node's replica holds every write committed before
	// the call (leadership confirmed by the leader).
	ConsistentBarrier(ctx context.Context) error
}

// ComponentBackend is what ComponentService needs from a node.
type ComponentBackend interface {
	Writer
	Reader
	// CreateLinked creates a component built from the GitHub repository in req.Source.
	CreateLinked(ctx context.Context, req *componentv1.CreateRequest) (*componentv1.CreateResponse, error)
	// DeleteComponent deletes a component and the webhook of its repository, if any.
	DeleteComponent(ctx context.Context, name string) (uint64, error)
}

// Components implements ComponentService.
type Components struct {
	B ComponentBackend
}

var _ componentv1connect.ComponentServiceHandler = (*Components)(nil)

const (
	defaultWait = 5 * time.Second
	maxWait     = 5 * time.Minute
)

// waitFor is how long a blocking query asking for ms may wait.
func waitFor(ms uint32) time.Duration {
	if ms == 0 {
		return defaultWait
	}
	return min(time.Duration(ms)*time.Millisecond, maxWait)
}

// read applies the caller's read options before a local read.
func (s *Components) read(ctx context.Context, o *componentv1.ReadOptions) error {
	if o.GetConsistent() {
		if err := s.B.ConsistentBarrier(ctx); err != nil {
			return toConnect(err)
		}
	}
	if o.GetMinIndex() > 0 {
		wctx, cancel := context.WithTimeout(ctx, waitFor(o.GetWaitMs()))
		defer cancel()
		// A blocking query returns what it has when the wait ends, as Consul's do.
		_, _ = s.B.Store().WaitForIndex(wctx, o.GetMinIndex())
		if ctx.Err() != nil {
			return toConnect(ctx.Err())
		}
	}
	return nil
}

func (s *Components) Get(ctx context.Context, req *connect.Request[componentv1.GetRequest]) (*connect.Response[componentv1.GetResponse], error) {
	if err := s.read(ctx, req.Msg.Read); err != nil {
		return nil, err
	}
	idx, comps, statuses := componentStatuses(s.B.Store(), req.Msg.Name, true)
	if len(comps) == 0 {
		// The store's own error names what is missing, as the other reads do.
		_, err := s.B.Store().Component(req.Msg.Name)
		if err == nil {
			err = fmt.Errorf("component %q: %w", req.Msg.Name, fsm.ErrNotFound)
		}
		return nil, toConnect(err)
	}
	return connect.NewResponse(&componentv1.GetResponse{Component: comps[0], Index: idx, Status: statuses[req.Msg.Name]}), nil
}

func (s *Components) List(ctx context.Context, req *connect.Request[componentv1.ListRequest]) (*connect.Response[componentv1.ListResponse], error) {
	if err := s.read(ctx, req.Msg.Read); err != nil {
		return nil, err
	}
	idx, comps, statuses := componentStatuses(s.B.Store(), "", false)
	comps, total := pageComponents(comps, req.Msg.Filter, req.Msg.Offset, req.Msg.Limit)
	if uint32(len(comps)) != total || req.Msg.Offset > 0 {
		shown := make(map[string]*componentv1.ComponentStatus, len(comps))
		for _, c := range comps {
			shown[c.Name] = statuses[c.Name]
		}
		statuses = shown
	}
	return connect.NewResponse(&componentv1.ListResponse{Components: comps, Index: idx, Statuses: statuses, Total: total}), nil
}

// pageComponents sorts comps by name, keeps those whose name or repository contains filter
// (case-insensitive), and returns limit of them (0: all) from offset, with how many matched.
func pageComponents(comps []*statev1.Component, filter string, offset, limit uint32) ([]*statev1.Component, uint32) {
	slices.SortFunc(comps, func(a, b *statev1.Component) int { return strings.Compare(a.Name, b.Name) })
	if f := strings.ToLower(strings.TrimSpace(filter)); f != "" {
		comps = slices.DeleteFunc(comps, func(c *statev1.Component) bool {
			return !strings.Contains(c.Name, f) && !strings.Contains(strings.ToLower(c.GetSource().GetGithubRepo()), f)
		})
	}
	total := uint32(len(comps))
	comps = comps[min(offset, total):]
	if limit > 0 && uint32(len(comps)) > limit {
		comps = comps[:limit]
	}
	return comps, total
}

func (s *Components) Create(ctx context.Context, req *connect.Request[componentv1.CreateRequest]) (*connect.Response[componentv1.CreateResponse], error) {
	m := req.Msg
	if err := fsm.ValidName(m.Name); err != nil {
		return nil, invalidArg(err)
	}
	if m.Source.GetGithubRepo() != "" {
		return respond(s.B.CreateLinked(ctx, m))
	}
	if m.PollSeconds != 0 {
		return nil, invalidArg(errors.New("poll_seconds needs source.github_repo"))
	}
	spec := v9spec.Defaulted(m.Spec)
	c := &statev1.Component{
		Name:     m.Name,
		Owner:    m.Owner,
		Source:   m.Source,
		Runtime:  m.Runtime,
		Spec:     spec,
		Desired:  statev1.DesiredState_DESIRED_STATE_RUNNING,
		Replicas: v9spec.InitialReplicas(spec),
	}
	cmd := &statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: c}}}
	idx, c, err := s.writeThenGet(ctx, cmd, m.Name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&componentv1.CreateResponse{Component: c, Index: idx}), nil
}

// writeThenGet commits cmd and answers with the component as the command left it: the
// FSM's result, never a later read, which a concurrent write (a delete landing between the
// commit and the read) may already have changed. It then waits, as far as ctx allows, until
// this node's replica has applied the write, so the caller's next read here sees it.
func (s *Components) writeThenGet(ctx context.Context, cmd *statev1.Command, name string) (uint64, *statev1.Component, error) {
	res, err := s.B.ApplyResult(ctx, cmd)
	if err != nil {
		return 0, nil, toConnect(err)
	}
	// The write is applied: a failed wait must not turn it into an error.
	_, _ = s.B.Store().WaitForIndex(ctx, res.Index)
	c := res.Component
	if c == nil {
		// A leader older than this node returns no component: read it back, as they did.
		if c, err = s.B.Store().Component(name); err != nil {
			return 0, nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("the write to component %s was applied at index %d, but a later write changed it before it could be read back: %w", name, res.Index, err))
		}
	}
	return res.Index, c, nil
}

func (s *Components) UpdateSpec(ctx context.Context, req *connect.Request[componentv1.UpdateSpecRequest]) (*connect.Response[componentv1.UpdateSpecResponse], error) {
	cmd := &statev1.Command{Op: &statev1.Command_UpdateComponentSpec{UpdateComponentSpec: &statev1.UpdateComponentSpec{Name: req.Msg.Name, Spec: req.Msg.Spec, IfModifyIndex: req.Msg.IfModifyIndex}}}
	idx, c, err := s.writeThenGet(ctx, cmd, req.Msg.Name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&componentv1.UpdateSpecResponse{Component: c, Index: idx}), nil
}

func (s *Components) setDesired(ctx context.Context, name string, d statev1.DesiredState) (uint64, *statev1.Component, error) {
	cmd := &statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{Name: name, Desired: d}}}
	return s.writeThenGet(ctx, cmd, name)
}

func (s *Components) Pause(ctx context.Context, req *connect.Request[componentv1.PauseRequest]) (*connect.Response[componentv1.PauseResponse], error) {
	idx, c, err := s.setDesired(ctx, req.Msg.Name, statev1.DesiredState_DESIRED_STATE_PAUSED)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&componentv1.PauseResponse{Component: c, Index: idx}), nil
}

func (s *Components) Resume(ctx context.Context, req *connect.Request[componentv1.ResumeRequest]) (*connect.Response[componentv1.ResumeResponse], error) {
	idx, c, err := s.setDesired(ctx, req.Msg.Name, statev1.DesiredState_DESIRED_STATE_RUNNING)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&componentv1.ResumeResponse{Component: c, Index: idx}), nil
}

func (s *Components) Scale(ctx context.Context, req *connect.Request[componentv1.ScaleRequest]) (*connect.Response[componentv1.ScaleResponse], error) {
	cmd := &statev1.Command{Op: &statev1.Command_ScaleComponent{ScaleComponent: &statev1.ScaleComponent{Name: req.Msg.Name, Replicas: req.Msg.Replicas}}}
	idx, c, err := s.writeThenGet(ctx, cmd, req.Msg.Name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&componentv1.ScaleResponse{Component: c, Index: idx}), nil
}

func (s *Components) Delete(ctx context.Context, req *connect.Request[componentv1.DeleteRequest]) (*connect.Response[componentv1.DeleteResponse], error) {
	idx, err := s.B.DeleteComponent(ctx, req.Msg.Name)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&componentv1.DeleteResponse{Index: idx}), nil
}
