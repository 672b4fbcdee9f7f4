package leader

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// clock is a settable time for the controllers' now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_000_000, 0)} }
func nodeStatus(f *fakeStore, id string) statev1.NodeStatus {
	n, _ := f.st.Node(id)
	return n.GetStatus()
}

// TestLivenessMarksSilentNodesDownAndBack: outside a term heartbeats are refused; a node
// silent past the TTL is marked down (its heartbeats refused while that commits); heard
// again, it is marked ready; the term's end drops
// everything heard.
func TestLivenessMarksSilentNodesDownAndBack(t *testing.T) {
	f := newFake(t, &statev1.State{Index: 1, Nodes: []*statev1.Node{readyNode("a"), readyNode("b")}})
	clk := newClock()
	l := NewLiveness(f, LivenessConfig{Interval: time.Second, TTL: 3 * time.Second}, quiet())
	l.now = clk.now
	if err := l.Record(&clusterv1.HeartbeatRequest{NodeId: "a"}); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("heartbeat outside a term: %v", err)
	}
	l.reset(clk.now())
	clk.add(2 * time.Second)
	if err := l.Record(&clusterv1.HeartbeatRequest{NodeId: "a", Artifacts: []string{"sha256:x"}}); err != nil {
		t.Fatal(err)
	}
	l.Check(context.Background(), clk.now())
	if cmds := f.commands(); len(cmds) != 0 {
		t.Fatalf("within the TTL of the term's start: %v", cmds)
	}
	clk.add(2 * time.Second) // b: 4s since the term began; a: 2s since its heartbeat
	// b is marked down; a heartbeat of b racing the decision is refused.
	f.applyErr = errors.New("commit pending")
	l.Check(context.Background(), clk.now())
	f.applyErr = nil
	if got := nodeStatus(f, "b"); got != statev1.NodeStatus_NODE_STATUS_READY {
		t.Fatalf("b is %s before a successful commit", got)
	}
	l.Check(context.Background(), clk.now())
	if got := nodeStatus(f, "b"); got != statev1.NodeStatus_NODE_STATUS_DOWN {
		t.Fatalf("silent b is %s, want down", got)
	}
	if got := nodeStatus(f, "a"); got != statev1.NodeStatus_NODE_STATUS_READY {
		t.Fatalf("heard a is %s", got)
	}
	if hints := l.ArtifactHints(); !hints["a"]["sha256:x"] {
		t.Fatalf("artifact hints %v", hints)
	}
	// b is heard again: it comes back ready.
	if err := l.Record(&clusterv1.HeartbeatRequest{NodeId: "b"}); err != nil {
		t.Fatal(err)
	}
	l.Check(context.Background(), clk.now())
	if got := nodeStatus(f, "b"); got != statev1.NodeStatus_NODE_STATUS_READY {
		t.Fatalf("b heard again is %s, want ready", got)
	}
	// The term ends: heartbeats are refused and nothing heard is kept.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	cancel()
	<-done
	if _, real := l.LastHeard("a"); real || !l.Since().IsZero() || len(l.ArtifactHints()) != 0 {
		t.Fatal("soft state kept after the term")
	}
	if err := l.Record(&clusterv1.HeartbeatRequest{NodeId: "a"}); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("heartbeat after the term: %v", err)
	}
}

// TestLivenessRefusesHeartbeatWhileMarkingDown: the decision and heartbeat intake are
// atomic: once a node is judged silent, its heartbeat waits for the commit.
func TestLivenessRefusesHeartbeatWhileMarkingDown(t *testing.T) {
	l := NewLiveness(nil, LivenessConfig{Interval: time.Second, TTL: time.Second}, quiet())
	clk := newClock()
	l.now = clk.now
	l.reset(clk.now())
	clk.add(2 * time.Second)
	done, silent := l.markIfSilent("b", clk.now())
	if !silent {
		t.Fatal("b not silent")
	}
	if err := l.Record(&clusterv1.HeartbeatRequest{NodeId: "b"}); !errors.Is(err, ErrMarkingDown) {
		t.Fatalf("heartbeat while marking down: %v", err)
	}
	done()
	if err := l.Record(&clusterv1.HeartbeatRequest{NodeId: "b"}); err != nil {
		t.Fatal(err)
	}
}

type hints map[string]map[string]bool

func (h hints) ArtifactHints() map[string]map[string]bool { return h }

// TestSchedulerCommitsPlanOnce: a pass commits the placements the state lacks; the next pass
// finds nothing to do; Run schedules again when the state changes.
func TestSchedulerCommitsPlanOnce(t *testing.T) {
	f := newFake(t, oneComponent(1, readyNode("a"), readyNode("b")))
	s := NewScheduler(f, hints{}, quiet())
	s.Pass(context.Background())
	cmds := f.commands()
	if len(cmds) != 1 || len(cmds[0].GetPutPlacements().GetPlacements()) != 1 {
		t.Fatalf("first pass: %v", cmds)
	}
	s.Pass(context.Background())
	if cmds := f.commands(); len(cmds) != 0 {
		t.Fatalf("second pass: %v", cmds)
	}
	// Run: scaling to 2 is placed without a Pass call.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if _, err := f.Apply(ctx, &statev1.Command{Op: &statev1.Command_ScaleComponent{ScaleComponent: &statev1.ScaleComponent{Name: "hello", Replicas: 2}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(f.st.Placements("")) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d placements after scaling to 2", len(f.st.Placements("")))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rolloutState: hello's active deployment d2 has a failed placement while d1 still runs.
func rolloutState() *statev1.State {
	s := oneComponent(1, readyNode("a"))
	s.Components[0].ActiveDeploymentId = "d2"
	s.Deployments = append(s.Deployments, &statev1.Deployment{Id: "d2", ComponentId: "c1", Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, CreateIndex: 8})
	run := statev1.PlacementDesired_PLACEMENT_DESIRED_RUN
	s.Placements = []*statev1.Placement{
		{Id: "p1", ComponentId: "c1", DeploymentId: "d1", NodeId: "a", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING},
		{Id: "p2", ComponentId: "c1", DeploymentId: "d2", NodeId: "a", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, Reason: "compile: bad module"},
		// Still starting: not every new instance has failed, so the deadline decides.
		{Id: "p3", ComponentId: "c1", DeploymentId: "d2", NodeId: "a", Desired: run, Observed: statev1.PlacementObserved_PLACEMENT_OBSERVED_STARTING},
	}
	return s
}

// TestRolloutsFailAfterDeadline: a rollout short of running instances is clocked from when
// it was first seen; at its deadline the older deployment is activated again and the new one
// marked failed with the reason; a new term starts the clock again.
func TestRolloutsFailAfterDeadline(t *testing.T) {
	f := newFake(t, rolloutState())
	clk := newClock()
	r := NewRollouts(f, nil, RolloutConfig{Every: time.Second, Deadline: 10 * time.Second}, quiet())
	r.Check(context.Background(), clk.now())
	clk.add(9 * time.Second)
	r.Check(context.Background(), clk.now())
	if cmds := f.commands(); len(cmds) != 0 {
		t.Fatalf("before the deadline: %v", cmds)
	}
	// A new term forgets the clock: 9s more is not past the deadline either.
	r.began = nil
	r.Check(context.Background(), clk.now())
	clk.add(9 * time.Second)
	r.Check(context.Background(), clk.now())
	if cmds := f.commands(); len(cmds) != 0 {
		t.Fatalf("a new term counted the old term's time: %v", cmds)
	}
	clk.add(time.Second)
	r.Check(context.Background(), clk.now())
	cmds := f.commands()
	if len(cmds) != 1 || cmds[0].GetSetDeploymentStatus().GetFallback() != "d1" || cmds[0].GetSetDeploymentStatus().GetStatus() != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		t.Fatalf("at the deadline: %v", cmds)
	}
	if c, _ := f.st.Component("hello"); c.GetActiveDeploymentId() != "d1" {
		t.Fatalf("active after the failed rollout: %q", c.GetActiveDeploymentId())
	}
	if msg := cmds[0].GetSetDeploymentStatus().GetError(); !strings.Contains(msg, "compile: bad module") || !strings.Contains(msg, "deployment d1 keeps serving") {
		t.Fatalf("failure message %q", msg)
	}
	if len(f.logs) != 1 {
		t.Fatalf("component log: %v", f.logs)
	}
	// Done: d1 is active again, nothing more to do.
	clk.add(time.Minute)
	r.Check(context.Background(), clk.now())
	if cmds := f.commands(); len(cmds) != 0 {
		t.Fatalf("after failing the rollout: %v", cmds)
	}
}

type loads map[string]sched.Load

func (l loads) ComponentLoad(time.Time) map[string]sched.Load { return l }

// TestAutoscalerScalesAfterWarmup: no decision until the term is a warm-up old (the load
// reports are partial); then load scales up; the cool-down clock is the autoscaler's own.
func TestAutoscalerScalesAfterWarmup(t *testing.T) {
	f := newFake(t, oneComponent(1, readyNode("a")))
	clk := newClock()
	a := NewAutoscaler(f, loads{"hello": {InFlight: 3}}, AutoscaleConfig{Every: time.Second, Warmup: 3 * time.Second}, quiet())
	a.begin(clk.now())
	a.Pass(context.Background(), clk.now())
	if cmds := f.commands(); len(cmds) != 0 {
		t.Fatalf("during the warm-up: %v", cmds)
	}
	clk.add(3 * time.Second)
	a.Pass(context.Background(), clk.now())
	cmds := f.commands()
	if len(cmds) != 1 || cmds[0].GetScaleComponent().GetReplicas() != 3 {
		t.Fatalf("under load: %v", cmds)
	}
	if c, _ := f.st.Component("hello"); c.Replicas != 3 {
		t.Fatalf("replicas %d", c.Replicas)
	}
	if a.scaled["hello"] != clk.now() || len(f.logs) != 1 {
		t.Fatalf("last change %v, logs %v", a.scaled, f.logs)
	}
	// The term ends: its soft state goes.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	cancel()
	<-done
	if len(a.scaled) != 0 || len(a.win.samples) != 0 {
		t.Fatal("soft state kept after the term")
	}
}

// termEndsStore is a fakeStore whose Apply fails once its ctx ends, as a real Apply does,
// and which ends the term right after the first command it applies.
type termEndsStore struct {
	*fakeStore
	endTerm context.CancelFunc
}

func (s termEndsStore) Apply(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	defer s.endTerm()
	return s.fakeStore.Apply(ctx, cmd)
}

// TestRolloutsFailFinishesAcrossTermEnd: the term ends as the failed rollout's one entry
// (fail the new deployment, activate the previous one) is written; it is written all the
// same, or the new deployment would stay active with no reason.
func TestRolloutsFailFinishesAcrossTermEnd(t *testing.T) {
	f := newFake(t, rolloutState())
	term, endTerm := context.WithCancel(context.Background())
	defer endTerm()
	clk := newClock()
	r := NewRollouts(termEndsStore{f, endTerm}, nil, RolloutConfig{Every: time.Second, Deadline: 10 * time.Second}, quiet())
	r.Check(term, clk.now())
	clk.add(10 * time.Second)
	r.Check(term, clk.now())
	if term.Err() == nil {
		t.Fatal("the term did not end")
	}
	cmds := f.commands()
	if len(cmds) != 1 || cmds[0].GetSetDeploymentStatus().GetStatus() != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		t.Fatalf("commands: %v", cmds)
	}
	if d, _ := f.st.Deployment("d2"); d.GetStatus() != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		t.Fatalf("the new deployment is %v", d.GetStatus())
	}
}

// userScalesStore is a fakeStore on which a user's `v9 component scale` commits right after
// the autoscaler has read the state, before its decision is written.
type userScalesStore struct {
	*fakeStore
	t        *testing.T
	replicas uint32 // what the user scales to, once
}

func (s *userScalesStore) ViewState(fn func(*statev1.State)) {
	s.fakeStore.ViewState(fn)
	if s.replicas == 0 {
		return
	}
	if _, err := s.fakeStore.Apply(context.Background(), &statev1.Command{Op: &statev1.Command_ScaleComponent{ScaleComponent: &statev1.ScaleComponent{
		Name: "hello", Replicas: s.replicas,
	}}}); err != nil {
		s.t.Error(err)
	}
	s.replicas = 0
}

// TestAutoscalerKeepsUserScaleCommittedMeanwhile: a scale a user commits between the
// autoscaler's read and its write is not overwritten by a decision made from that read; the
// next pass decides again from the state that has it.
func TestAutoscalerKeepsUserScaleCommittedMeanwhile(t *testing.T) {
	s := oneComponent(1, readyNode("a"))
	s.Components[0].ModifyIndex = 9 // as every written component has
	f := &userScalesStore{fakeStore: newFake(t, s), t: t, replicas: 2}
	clk := newClock()
	a := NewAutoscaler(f, loads{"hello": {InFlight: 3}}, AutoscaleConfig{Every: time.Second}, quiet())
	a.begin(clk.now())
	a.Pass(context.Background(), clk.now())
	if c, _ := f.st.Component("hello"); c.Replicas != 2 {
		t.Fatalf("replicas %d after a user scaled to 2 while the autoscaler decided from 1: the user's scale was overwritten", c.Replicas)
	}
	if len(f.logs) != 0 {
		t.Fatalf("system log %v for a decision that was not applied", f.logs)
	}
	// The user's scale restarted the cool-down (at the fake's real clock); past it, the load
	// scales from what the user set.
	a.Pass(context.Background(), time.Now().Add(time.Hour))
	if c, _ := f.st.Component("hello"); c.Replicas != 3 || len(f.logs) != 1 || !strings.Contains(f.logs[0], "from 2 to 3") {
		t.Fatalf("the next pass: replicas %d, logs %v", c.Replicas, f.logs)
	}
}
