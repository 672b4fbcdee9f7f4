package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
)

// membership reports whether this node's Raft configuration lists it (member), and whether
// it has a configuration at all (known: a node still joining has none).
func (n *Node) membership() (member, known bool) {
	f := n.raft.r.GetConfiguration()
	if f.Error() != nil || len(f.Configuration().Servers) == 0 {
		return false, false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(n.cfg.ID) {
			return true, true
		}
	}
	return false, true
}

// watchMembership notices when the cluster removes this node (its Raft configuration no
// longer lists it): the data plane stops its instances and its proxy refuses requests, and
// the log says so. A node removed while it runs stays out (its --join flags must not undo
// a remove-peer); a node that starts removed (restarted after a leave or remove-peer, or
// removed while it was down) asks its --join addresses to add it again, and serves again
// once listed.
func (n *Node) watchMembership(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var lastJoin, silentSince time.Time
	// mayRejoin: this process started removed (or learned it was removed while it was
	// away), so --join may add it again. A removal it sees while a member is final.
	var mayRejoin, seen, sawLeader bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		member, known := n.membership()
		if known && !seen {
			seen, mayRejoin = true, !member
		}
		if member && !sawLeader && len(n.cfg.Join) > 0 && n.leaderless(ctx, &silentSince) {
			member, mayRejoin = false, true // removed while it was away: the leader does not list it
		}
		rejoin := mayRejoin && len(n.cfg.Join) > 0
		switch {
		case !known:
		case member:
			if _, id := n.raft.r.LeaderWithID(); id != "" {
				sawLeader, mayRejoin = true, false
			}
			if n.dp.IsRemoved() {
				n.dp.Rejoined()
				go n.registerSelf(ctx)
			}
		default:
			hint := "restart it with --join <address of a member> to rejoin, or wipe its data dir"
			if rejoin {
				hint = "asking to rejoin through " + strings.Join(n.cfg.Join, ", ")
			}
			n.dp.Removed(fmt.Sprintf("node %s was removed from the cluster; %s", n.cfg.ID, hint))
			if rejoin && time.Since(lastJoin) > 2*time.Second {
				lastJoin = time.Now()
				for _, addr := range n.cfg.Join {
					if n.joinVia(ctx, addr) {
						break
					}
				}
			}
		}
	}
}

// leaderless reports whether this node has known no leader for 10 s while a node at one of
// its --join addresses follows a leader whose configuration does not list this node (or at
// another Raft address): it was removed, or moved, while down; it must join (again).
func (n *Node) leaderless(ctx context.Context, since *time.Time) bool {
	if _, id := n.raft.r.LeaderWithID(); id != "" {
		*since = time.Time{}
		return false
	}
	if since.IsZero() {
		*since = time.Now()
	}
	if time.Since(*since) < 10*time.Second {
		return false
	}
	for _, addr := range n.cfg.Join {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := n.peers.get(addr).cluster.Status(cctx, connect.NewRequest(&clusterv1.StatusRequest{}))
		cancel()
		if err != nil || st.Msg.GetLeaderId() == "" || len(st.Msg.GetMembers()) == 0 {
			continue
		}
		for _, m := range st.Msg.GetMembers() {
			if m.GetId() == n.cfg.ID && m.GetRaftAddr() == n.RaftAddr() { // listed elsewhere: rejoin here
				return false
			}
		}
		return true
	}
	return false
}
