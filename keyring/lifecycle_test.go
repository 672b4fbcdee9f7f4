package keyring

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// peerRings is a fake cluster: each node's keyring by API address.
type peerRings struct {
	self   string
	leader string
	rings  map[string]*Keyring
}

func (p *peerRings) IsLeader() bool             { return p.self == p.leader }
func (p *peerRings) LeaderAPI() (string, error) { return p.leader, nil }
func (p *peerRings) OtherAPIs() []string {
	var out []string
	if p.leader != p.self {
		out = append(out, p.leader)
	}
	for a := range p.rings {
		if a != p.self && a != p.leader {
			out = append(out, a)
		}
	}
	return out
}
func (p *peerRings) FetchKeys(_ context.Context, addr string, _ bool) (Set, error) {
	return p.rings[addr].Share(), nil
}

func openRing(t *testing.T, name string) *Keyring {
	t.Helper()
	k, err := Open(filepath.Join(t.TempDir(), name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A rotation on a node whose clock is behind the node that made the current key makes the
// new key active there and on every node that pulls it: a new key is always later than every
// key its node held (NewActive), not stamped by the wall clock alone.
func TestRotateOnNodeWithSlowClockChangesActiveKey(t *testing.T) {
	leader, follower := openRing(t, "leader"), openRing(t, "follower")
	// The leader's clock runs 10 minutes ahead of the follower's.
	first, err := Generate(time.Now().Add(10 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Add([]Key{first}, first.ID); err != nil {
		t.Fatal(err)
	}
	if err := follower.Add([]Key{first}, first.ID); err != nil {
		t.Fatal(err)
	}
	rings := map[string]*Keyring{"leader": leader, "follower": follower}
	c := &Cluster{Keys: follower, Peers: &peerRings{self: "follower", leader: "leader", rings: rings}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	id, missed, err := c.Rotate(context.Background(), func(_ context.Context, addr string) error {
		return (&Cluster{Keys: rings[addr], Peers: &peerRings{self: addr, leader: "leader", rings: rings}, Log: c.Log}).Pull(context.Background(), "follower")
	})
	if err != nil || len(missed) != 0 {
		t.Fatalf("rotate: %v, missed %v", err, missed)
	}
	if got := follower.Active(); got != id {
		t.Errorf("rotating node: active key %s after Rotate returned new key %s (still the old key %s)", got, id, first.ID)
	}
	if got := leader.Active(); got != id {
		t.Errorf("leader: active key %s after the rotation to %s (still the old key %s)", got, id, first.ID)
	}
	s, err := follower.Seal([]byte("v"), []byte("c/n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID != id {
		t.Errorf("a secret sealed after the rotation uses key %s, want the new key %s", s.KeyID, id)
	}
}

// A removed key is not taken again from a node that missed the removal (a follower
// refreshing its keys from the leader before it seals): the keyring keeps the removed ids.
func TestRemovedKeyDoesNotComeBackFromNodeThatMissedRemove(t *testing.T) {
	a, b := openRing(t, "a"), openRing(t, "b")
	old, err := Generate(time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*Keyring{a, b} {
		if err := k.Add([]Key{old, cur}, cur.ID); err != nil {
			t.Fatal(err)
		}
	}
	// The operator removes the old key; node b was down and missed it.
	if err := a.Remove(old.ID); err != nil {
		t.Fatal(err)
	}
	rings := map[string]*Keyring{"a": a, "b": b}
	c := &Cluster{Keys: a, Peers: &peerRings{self: "a", leader: "b", rings: rings}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// Node a seals a secret (a follower refreshes its keys from the leader first).
	if _, _, _, err := c.SealSecret(context.Background(), "c1", "DB", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if a.Has(old.ID) {
		t.Errorf("node a holds removed key %s again after pulling keys from node b, which missed the removal", old.ID)
	}
}

// A node that missed a removal forgets the key when it next takes another node's keys, and
// the removal survives a restart; a removal record never takes a node's active key.
func TestRemovalSpreadsToNodeThatMissedIt(t *testing.T) {
	a, b := openRing(t, "a"), openRing(t, "b")
	old, err := Generate(time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*Keyring{a, b} {
		if err := k.Add([]Key{old}, old.ID); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := a.NewActive(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(old.ID); err != nil {
		t.Fatal(err)
	}
	// b missed both; it takes a's keys through the wire format.
	if err := b.Merge(SetFromProto(a.Share().Proto())); err != nil {
		t.Fatal(err)
	}
	if b.Has(old.ID) || b.Active() != cur.ID {
		t.Fatalf("b after taking a's keys: holds removed key %v, active %s (want %s)", b.Has(old.ID), b.Active(), cur.ID)
	}
	b2, err := Open(b.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Add([]Key{old}, ""); err != nil {
		t.Fatal(err)
	}
	if b2.Has(old.ID) {
		t.Fatal("a removed key came back after a restart")
	}
	// A removal record naming a node's active key leaves that key in place.
	if err := b2.Merge(Set{Removed: []string{cur.ID}}); err != nil {
		t.Fatal(err)
	}
	if !b2.Has(cur.ID) || b2.Active() != cur.ID {
		t.Fatal("a removal record took the active key")
	}
}

// The sync loop's step takes the leader's keys, then each other node's in turn: a key made on
// one node reaches a node that never asked for it.
func TestSyncTakesKeysOfLeaderAndEachPeer(t *testing.T) {
	rings := map[string]*Keyring{"l": openRing(t, "l"), "f1": openRing(t, "f1"), "f2": openRing(t, "f2")}
	first, err := rings["l"].NewActive(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// f2 rotated while the leader was away: only f2 holds the newest key.
	if err := rings["f2"].Add([]Key{first}, first.ID); err != nil {
		t.Fatal(err)
	}
	second, err := rings["f2"].NewActive(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Keys: rings["f1"], Peers: &peerRings{self: "f1", leader: "l", rings: rings}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	next := 0
	for range 2 {
		next = c.syncOnce(context.Background(), next)
	}
	if !rings["f1"].Has(first.ID) || !rings["f1"].Has(second.ID) || rings["f1"].Active() != second.ID {
		keys, active := rings["f1"].Keys()
		t.Fatalf("f1 after two syncs: %d keys, active %s; want %s and %s, active %s", len(keys), active, first.ID, second.ID, second.ID)
	}
}
