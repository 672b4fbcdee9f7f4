package node

import (
	"context"
	"slices"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// isMember reports whether this node's Raft configuration lists it: a removed node must
// not register itself again (the scheduler would place instances on a non-member).
func (n *Node) isMember() bool {
	m, _ := n.membership()
	return m
}

// registerSelf makes sure the replicated state holds this node with its current addresses,
// so that other nodes can reach its API and proxy. It retries until it succeeds.
func (n *Node) registerSelf(ctx context.Context) {
	for {
		nd, err := n.fsm.Store.Node(n.cfg.ID)
		if err == nil && nd.ApiAddr == n.APIAddr() && nd.RaftAddr == n.RaftAddr() && nd.ProxyAddr == n.ProxyAddr() &&
			slices.Equal(nd.Runtimes, n.runtimes) {
			return
		}
		if _, id := n.raft.r.LeaderWithID(); id != "" && n.isMember() {
			cmd := &statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
				Id: n.cfg.ID, ApiAddr: n.APIAddr(), ProxyAddr: n.ProxyAddr(), RaftAddr: n.RaftAddr(), Runtimes: n.runtimes,
			}}}}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := n.Apply(cctx, cmd)
			cancel()
			if err == nil {
				n.log.Info("registered node in cluster state")
				continue
			}
			n.log.Debug("register node", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
