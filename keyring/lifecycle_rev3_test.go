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
func (p *peerRings) FetchKeys(_ context.Context, addr string, _ bool) ([]Key, string, error) {
	keys, active := p.rings[addr].Keys()
	return keys, active, nil
}

func openRing(t *testing.T, name string) *Keyring {
	t.Helper()
	k, err := Open(filepath.Join(t.TempDir(), name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A node whose clock is behind the node that made the current key rotates: Rotate reports
// a new active key, but the keyring keeps sealing with the old one (Add moves the active key
// only to a key with a later Created, read from each node's own wall clock), on that node
// and on every node that pulls. An operator rotating after a suspected compromise is told
// the rotation happened while new secrets are still sealed with the old key.
func TestRev3RotateOnNodeWithSlowClockChangesActiveKey(t *testing.T) {
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

// `v9 keyring remove` forgets a key on every node it reaches and reports the rest as
// unreachable; but a node that missed it still holds the key, and the next time any node
// pulls keys from it (a later rotation, a follower refreshing before it seals, a node
// opening a secret) the removed key comes back: there is no record that it was removed.
func TestRev3RemovedKeyDoesNotComeBackFromNodeThatMissedRemove(t *testing.T) {
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
