package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A node restarts with its data dir but at a new Raft address (a machine that got a new IP
// after a reboot, a replaced VM that kept its disk), with --join naming a member. Its own
// Raft configuration still lists it (at the old address), so bootstrapOrJoin never asks to
// join and watchMembership sees it as a member; the leader keeps sending to the old address.
// The node never hears a leader again and never serves: it must be re-added at its new
// address (what Join does for "same id at a new address"), as Consul does when a server's
// address changes.
func TestRestartAtNewRaftAddressRejoins(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.Leader(t)
	_, i := follower(t, c)
	id := c.Nodes[i].ID()
	old := c.Nodes[i].RaftAddr()
	c.Stop(i)
	cfg := c.cfgs[i]
	cfg.RaftAddr = "127.0.0.1:0" // the machine's address changed
	cfg.Join = []string{leader.APIAddr()}
	n := c.start(cfg)
	if n.RaftAddr() == old {
		t.Skip("the OS gave the same port back")
	}
	Eventually(t, 30*time.Second, func() error {
		f := leader.raft.r.GetConfiguration()
		if err := f.Error(); err != nil {
			return err
		}
		for _, s := range f.Configuration().Servers {
			if s.ID == raft.ServerID(id) && string(s.Address) != n.RaftAddr() {
				return fmt.Errorf("the leader's configuration lists %s at %s, not its new address %s", id, s.Address, n.RaftAddr())
			}
		}
		if _, lid := n.raft.r.LeaderWithID(); lid == "" {
			return fmt.Errorf("%s, restarted at %s, knows no leader", id, n.RaftAddr())
		}
		return nil
	})
}
