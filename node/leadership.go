package node

import (
	"context"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/leader"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// setupLeadership builds the leadership owner and registers every leader controller: the
// control plane's (package leader); openGitHub registers the GitHub loops (builds, polling,
// commit statuses).
func (n *Node) setupLeadership() {
	env := leaderEnv{n}
	lc := n.cfg.Liveness
	n.owner = leader.NewOwner(n.log, env)
	n.live = leader.NewLiveness(env, leader.LivenessConfig{Interval: lc.HeartbeatInterval, TTL: lc.TTL}, n.log)
	n.scheduler = leader.NewScheduler(env, n.live, n.log)
	// Rollouts and autoscaling read the whole state: a few times a second is plenty.
	every := 4 * lc.HeartbeatInterval
	n.owner.Register(
		n.scheduler,
		n.live,
		leader.NewRollouts(env, n.live, leader.RolloutConfig{Every: every, Deadline: lc.RolloutDeadline, CanaryWindowMax: lc.CanaryWindowMax}, n.log),
		leader.NewAutoscaler(env, n.live, leader.AutoscaleConfig{Every: every, Warmup: lc.TTL, Policy: n.cfg.Autoscale}, n.log),
	)
	n.owner.Register(n.cfg.extraControllers...)
}

// runLeadership follows Raft leadership and starts or stops the controllers with it.
func (n *Node) runLeadership(ctx context.Context) {
	n.owner.Run(ctx, n.raft.r.LeaderCh())
}

// leaderEnv is what the leader controllers read and write through, each by the narrow
// interface it declares.
type leaderEnv struct{ n *Node }

var (
	_ leader.Barrier        = leaderEnv{}
	_ leader.LivenessStore  = leaderEnv{}
	_ leader.ScheduleStore  = leaderEnv{}
	_ leader.RolloutStore   = leaderEnv{}
	_ leader.AutoscaleStore = leaderEnv{}
)

// Barrier commits a Raft barrier: once it returns, this node's state holds every entry a
// previous leader committed.
func (e leaderEnv) Barrier(ctx context.Context) error {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	return e.n.raft.r.Barrier(timeout).Error()
}

func (e leaderEnv) Apply(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	return e.n.Apply(ctx, cmd)
}

func (e leaderEnv) ApplyAsLeader(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	return e.n.ApplyAsLeader(ctx, cmd)
}

func (e leaderEnv) ViewState(f func(*statev1.State)) { e.n.fsm.Store.ViewState(f) }
func (e leaderEnv) View(f func(fsm.View))            { e.n.fsm.Store.View(f) }
func (e leaderEnv) State() *statev1.State            { return e.n.fsm.Store.State() }
func (e leaderEnv) Nodes() []*statev1.Node           { return e.n.fsm.Store.Nodes() }

func (e leaderEnv) TableIndex(ts ...fsm.Table) uint64 { return e.n.fsm.Store.TableIndex(ts...) }

func (e leaderEnv) WaitTables(ctx context.Context, min uint64, ts ...fsm.Table) (uint64, error) {
	return e.n.fsm.Store.WaitTables(ctx, min, ts...)
}

func (e leaderEnv) SystemLog(component, line string) { e.n.logs.Append(component, "", "system", line) }
