package node

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
)

// discovery remembers the peers a node has heard of while waiting to bootstrap.
type discovery struct {
	mu    sync.Mutex
	known map[string]peer
}

type peer struct {
	id, raftAddr, apiAddr string
}

func (d *discovery) add(p *clusterv1.Peer) {
	if p.GetNodeId() == "" || p.GetRaftAddr() == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.known[p.NodeId] = peer{id: p.NodeId, raftAddr: p.RaftAddr, apiAddr: p.ApiAddr}
}

func (d *discovery) apiAddr(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.known[id].apiAddr
}

func (d *discovery) list() []peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]peer, 0, len(d.known))
	for _, p := range d.known {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (n *Node) self() *clusterv1.Peer {
	return &clusterv1.Peer{NodeId: n.cfg.ID, RaftAddr: n.RaftAddr(), ApiAddr: n.APIAddr()}
}

// hasConfiguration reports whether this node is part of a Raft configuration.
func (n *Node) hasConfiguration() bool {
	f := n.raft.r.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// Discover answers a peer that is looking for others before bootstrap.
func (n *Node) Discover(_ context.Context, req *clusterv1.DiscoverRequest) (*clusterv1.DiscoverResponse, error) {
	if req.Self != nil && req.Self.NodeId != n.cfg.ID {
		n.disc.add(req.Self)
	}
	_, leader := n.raft.r.LeaderWithID()
	resp := &clusterv1.DiscoverResponse{
		Self:            n.self(),
		HasState:        n.hasConfiguration(),
		LeaderId:        string(leader),
		BootstrapExpect: uint32(n.cfg.BootstrapExpect),
	}
	for _, p := range n.disc.list() {
		resp.Known = append(resp.Known, &clusterv1.Peer{NodeId: p.id, RaftAddr: p.raftAddr, ApiAddr: p.apiAddr})
	}
	return resp, nil
}

// bootstrapOrJoin runs on a node without Raft state until it is part of a cluster: with
// BootstrapExpect it gathers peers and, once it knows that many, bootstraps with exactly the
// set every other peer also sees; if it meets a cluster that already has a leader, it joins
// that instead. Without BootstrapExpect it asks the Join addresses to add it.
func (n *Node) bootstrapOrJoin(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if n.hasConfiguration() {
			return
		}
		if n.tryJoinOrBootstrap(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (n *Node) tryJoinOrBootstrap(ctx context.Context) bool {
	var clusterAddrs []string
	for _, addr := range n.cfg.Join {
		if n.cfg.BootstrapExpect == 0 {
			clusterAddrs = append(clusterAddrs, addr)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := n.peers.get(addr).internal.Discover(cctx, connect.NewRequest(&clusterv1.DiscoverRequest{Self: n.self()}))
		cancel()
		if err != nil {
			n.log.Debug("discover peer", "addr", addr, "err", err)
			continue
		}
		if resp.Msg.Self.GetNodeId() != n.cfg.ID {
			n.disc.add(resp.Msg.Self)
		}
		for _, p := range resp.Msg.Known {
			if p.NodeId != n.cfg.ID {
				n.disc.add(p)
			}
		}
		if resp.Msg.HasState && resp.Msg.LeaderId != "" {
			clusterAddrs = append(clusterAddrs, addr)
		}
	}
	for _, addr := range clusterAddrs {
		if n.joinVia(ctx, addr) {
			return true
		}
	}
	if n.cfg.BootstrapExpect == 0 {
		return false
	}
	peers := append(n.disc.list(), peer{id: n.cfg.ID, raftAddr: n.RaftAddr(), apiAddr: n.APIAddr()})
	if len(peers) < n.cfg.BootstrapExpect {
		n.log.Debug("waiting for peers to bootstrap", "known", len(peers), "expect", n.cfg.BootstrapExpect)
		return false
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].id < peers[j].id })
	var conf raft.Configuration
	for _, p := range peers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.id), Address: raft.ServerAddress(p.raftAddr)})
	}
	err := n.raft.r.BootstrapCluster(conf).Error()
	switch {
	case err == nil:
		n.log.Info("bootstrapped cluster", "voters", len(conf.Servers))
	case errors.Is(err, raft.ErrCantBootstrap):
		n.log.Info("cluster already bootstrapped")
	default:
		n.log.Error("bootstrap", "err", err)
		return false
	}
	return true
}

func (n *Node) joinVia(ctx context.Context, addr string) bool {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := n.peers.get(addr).cluster.Join(cctx, connect.NewRequest(n.joinRequest()))
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Meta().Get(LeaderAPIHeader) != "" {
		addr = ce.Meta().Get(LeaderAPIHeader) // a follower: ask the leader itself
		_, err = n.peers.get(addr).cluster.Join(cctx, connect.NewRequest(n.joinRequest()))
	}
	if err != nil {
		n.log.Info("join attempt failed; will retry", "via", addr, "err", err)
		return false
	}
	n.log.Info("joined cluster", "via", addr)
	return true
}

func (n *Node) joinRequest() *clusterv1.JoinRequest {
	return &clusterv1.JoinRequest{
		NodeId:    n.cfg.ID,
		RaftAddr:  n.RaftAddr(),
		ApiAddr:   n.APIAddr(),
		ProxyAddr: n.ProxyAddr(),
		Runtimes:  n.runtimes,
	}
}
