package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/fsm"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func componentClient(n *Node) componentv1connect.ComponentServiceClient {
	return componentv1connect.NewComponentServiceClient(TestHTTPClient, "http://"+n.APIAddr())
}

func createComponent(ctx context.Context, n *Node, name string) (*componentv1.CreateResponse, error) {
	resp, err := componentClient(n).Create(ctx, connect.NewRequest(&componentv1.CreateRequest{
		Name:    name,
		Runtime: statev1.Runtime_RUNTIME_WASM,
		Spec:    &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Env: map[string]string{"GREETING": "hi"}},
	}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func mustCreate(t *testing.T, n *Node, name string) *componentv1.CreateResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := createComponent(ctx, n, name)
	if err != nil {
		t.Fatalf("create %s via %s: %v", name, n.ID(), err)
	}
	return resp
}

// waitComponent waits until node n's replica has the component.
func waitComponent(t *testing.T, n *Node, name string) *statev1.Component {
	t.Helper()
	var c *statev1.Component
	Eventually(t, 10*time.Second, func() (err error) {
		c, err = n.Store().Component(name)
		return err
	})
	return c
}

func TestWriteThroughFollowerVisibleOnAll(t *testing.T) {
	c := NewTestCluster(t, 3)
	f := c.Follower(t)
	resp := mustCreate(t, f, "hello")
	if resp.Component.Id == "" || resp.Component.CreateTime == nil {
		t.Fatalf("leader did not stamp id and time: %v", resp.Component)
	}
	for _, n := range c.Nodes {
		got := waitComponent(t, n, "hello")
		if got.Id != resp.Component.Id || got.Spec.Env["GREETING"] != "hi" || got.Replicas != 1 {
			t.Fatalf("%s has %v, want %v", n.ID(), got, resp.Component)
		}
	}
	// Domain errors travel back through the forwarding follower with their Connect codes.
	_, err := createComponent(context.Background(), f, "hello")
	if connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("duplicate create: got %v, want AlreadyExists", err)
	}
	_, err = createComponent(context.Background(), f, "Bad_Name")
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("bad name: got %v, want InvalidArgument", err)
	}
	_, err = componentClient(f).Get(context.Background(), connect.NewRequest(&componentv1.GetRequest{Name: "nope"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("get missing: got %v, want NotFound", err)
	}
}

func TestConsistentReadOnFollowerSeesLatestWrite(t *testing.T) {
	c := NewTestCluster(t, 3)
	l, f := c.Leader(t), c.Follower(t)
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("c%d", i)
		mustCreate(t, l, name)
		resp, err := componentClient(f).Get(context.Background(), connect.NewRequest(&componentv1.GetRequest{
			Name: name, Read: &componentv1.ReadOptions{Consistent: true},
		}))
		if err != nil {
			t.Fatalf("consistent read of %s on follower right after the write: %v", name, err)
		}
		if resp.Msg.Component.Name != name {
			t.Fatalf("got %v", resp.Msg.Component)
		}
	}
}

func TestLeaderKillFailoverAndCatchUp(t *testing.T) {
	c := NewTestCluster(t, 3)
	mustCreate(t, c.Leader(t), "before")
	old := c.Leader(t)
	oldIdx := indexOf(old.ID())
	c.Kill(oldIdx)

	nl := c.Leader(t)
	if nl == old {
		t.Fatal("killed node still leads")
	}
	mustCreate(t, c.Follower(t), "after")

	back := c.Restart(oldIdx)
	got := waitComponent(t, back, "after")
	if got.Name != "after" {
		t.Fatalf("restarted node has %v", got)
	}
	waitComponent(t, back, "before")
}

func TestRestartAllKeepsState(t *testing.T) {
	c := NewTestCluster(t, 3)
	l := c.Leader(t)
	mustCreate(t, l, "a")
	mustCreate(t, l, "b")
	if _, err := componentClient(l).Scale(context.Background(), connect.NewRequest(&componentv1.ScaleRequest{Name: "b", Replicas: 3})); err != nil {
		t.Fatal(err)
	}
	if _, err := componentClient(l).Pause(context.Background(), connect.NewRequest(&componentv1.PauseRequest{Name: "a"})); err != nil {
		t.Fatal(err)
	}
	for i := range c.Nodes {
		waitComponent(t, c.Nodes[i], "b")
	}
	Eventually(t, 5*time.Second, func() error {
		for _, n := range c.Nodes {
			if b, _ := n.Store().Component("b"); b == nil || b.Replicas != 3 {
				return fmt.Errorf("%s has not applied the scale", n.ID())
			}
		}
		return nil
	})
	want := c.Nodes[0].Store().State()
	for i := range c.Nodes {
		c.Stop(i)
	}
	for i := range c.Nodes {
		c.Restart(i)
	}
	c.Leader(t)
	// A restarted follower may replay only part of the log from its own disk; the leader
	// sends it the rest, so each node converges on the state from before the restart.
	for _, n := range c.Nodes {
		Eventually(t, 5*time.Second, func() error {
			a, _ := n.Store().Component("a")
			b, _ := n.Store().Component("b")
			if a == nil || b == nil || a.Desired != statev1.DesiredState_DESIRED_STATE_PAUSED || b.Replicas != 3 || b.Spec.ScaleMax != 3 {
				return fmt.Errorf("%s after restart: a=%v b=%v", n.ID(), a, b)
			}
			return nil
		})
	}
	got := c.Nodes[0].Store().State()
	if len(got.Components) != len(want.Components) {
		t.Fatalf("components after restart: %d, want %d", len(got.Components), len(want.Components))
	}
	// New writes still work after a full restart.
	mustCreate(t, c.Follower(t), "c")
}

func TestSnapshotThenNewNodeJoinsBySnapshot(t *testing.T) {
	rc := TestRaftConfig
	rc.SnapshotThreshold = 16
	rc.TrailingLogs = 4
	rc.SnapshotInterval = 100 * time.Millisecond
	c := NewTestClusterWith(t, 3, rc)
	l := c.Leader(t)
	for i := 0; i < 40; i++ {
		mustCreate(t, l, fmt.Sprintf("c%d", i))
	}
	if err := l.raft.r.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	// Compaction removed the early log entries, so a new node can only catch up by snapshot.
	first, err := l.raft.store.FirstIndex()
	if err != nil || first <= 1 {
		t.Fatalf("log not compacted: first index %d, %v", first, err)
	}
	n4 := c.AddNode(c.Follower(t))
	// The FSM holds the restored state a moment before Raft records the installed snapshot.
	Eventually(t, 15*time.Second, func() error {
		if got := len(n4.Store().Components()); got != 40 {
			return fmt.Errorf("new node has %d components", got)
		}
		if n4.raft.r.Stats()["last_snapshot_index"] == "0" {
			return fmt.Errorf("new node did not install a snapshot")
		}
		return nil
	})
	Eventually(t, 10*time.Second, func() error {
		st, err := n4.Status(context.Background())
		if err != nil || len(st.Members) != 4 {
			return fmt.Errorf("members after join: %v, %v", st, err)
		}
		return nil
	})
	mustCreate(t, n4, "from-n4")
	waitComponent(t, c.Nodes[0], "from-n4")
}

func TestRemovePeer(t *testing.T) {
	c := NewTestCluster(t, 3)
	f := c.Follower(t)
	victim := c.Follower(t)
	for _, n := range c.Live() {
		if n != f && !n.IsLeader() {
			victim = n
		}
	}
	// A dead peer is removed the same way as a live one.
	c.Kill(indexOf(victim.ID()))
	if _, err := f.RemovePeer(context.Background(), victim.ID()); err != nil {
		t.Fatalf("remove %s via %s: %v", victim.ID(), f.ID(), err)
	}
	Eventually(t, 5*time.Second, func() error {
		st, err := c.Leader(t).Status(context.Background())
		if err != nil {
			return err
		}
		for _, m := range st.Members {
			if m.Id == victim.ID() {
				return fmt.Errorf("%s still a member", victim.ID())
			}
		}
		if len(st.Members) != 2 {
			return fmt.Errorf("members: %v", st.Members)
		}
		return nil
	})
	if _, err := c.Leader(t).Store().Node(victim.ID()); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("removed node still in state: %v", err)
	}
	// Removing an unknown node says so.
	if _, err := f.RemovePeer(context.Background(), "ghost"); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("remove ghost: %v", err)
	}
	mustCreate(t, f, "still-writable")
}

func TestMinorityPartitionAcceptsNoWrites(t *testing.T) {
	c := NewTestCluster(t, 3)
	old := c.Leader(t)
	oi := indexOf(old.ID())
	c.Partition(oi)

	// The isolated old leader must not commit anything.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := createComponent(ctx, old, "lost-write")
	cancel()
	if err == nil {
		t.Fatal("a write through the minority side succeeded")
	}
	// The majority elects a leader and accepts writes.
	var nl *Node
	Eventually(t, 10*time.Second, func() error {
		for _, n := range c.Live() {
			if n != old && n.IsLeader() {
				nl = n
				return nil
			}
		}
		return errors.New("majority has no leader yet")
	})
	mustCreate(t, nl, "majority-write")

	c.Heal(oi)
	waitComponent(t, old, "majority-write")
	Eventually(t, 5*time.Second, func() error {
		for _, n := range c.Live() {
			if _, err := n.Store().Component("lost-write"); err == nil {
				return fmt.Errorf("%s holds the write made in the minority", n.ID())
			}
		}
		return nil
	})
}

func TestReplicasProduceIdenticalSnapshots(t *testing.T) {
	c := NewTestCluster(t, 3)
	l := c.Leader(t)
	for i := 0; i < 30; i++ {
		n := c.Live()[i%3]
		mustCreate(t, n, fmt.Sprintf("d%d", i))
		if i%3 == 0 {
			componentClient(n).Scale(context.Background(), connect.NewRequest(&componentv1.ScaleRequest{Name: fmt.Sprintf("d%d", i), Replicas: 2}))
		}
		// Failing commands are in the log too and must leave every replica alike.
		createComponent(context.Background(), n, fmt.Sprintf("d%d", i))
	}
	idx := l.Store().Index()
	var want []byte
	for _, n := range c.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := n.Store().WaitForIndex(ctx, idx); err != nil {
			t.Fatal(err)
		}
		cancel()
		b, err := fsm.EncodeSnapshot(n.Store().State())
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = b
		} else if string(b) != string(want) {
			t.Fatalf("%s snapshot differs from n1's", n.ID())
		}
	}
}
