package dataplane

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// MemberFencer is an executor whose instances must not reach the cluster's node ports on
// other machines (the container executor): it is given every member's API, Raft and proxy
// address whenever the node list changes.
type MemberFencer interface {
	FenceMembers(addrs []netip.AddrPort) error
}

// IsMember reports whether addr is an address of a member of the cluster (its API, Raft
// or proxy address, host names resolved): the proxy takes a forwarded request's choices
// only from a member.
func (dp *DataPlane) IsMember(addr netip.Addr) bool {
	m := dp.members.Load()
	return m != nil && (*m)[addr.Unmap()]
}

// fenceLoop keeps the members' addresses (IsMember) and the member fence of every executor
// that has one in step with the replicated node list. A failed update is retried at the
// next change or tick.
func (dp *DataPlane) fenceLoop(ctx context.Context) {
	var fencers []MemberFencer
	for _, ex := range dp.rec.execs {
		if f, ok := ex.(MemberFencer); ok {
			fencers = append(fencers, f)
		}
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	var last []netip.AddrPort
	for {
		idx := dp.cfg.Store.TableIndex(fsm.TableNodes)
		addrs := MemberAddrs(ctx, dp.cfg.Store.Nodes())
		ips := make(map[netip.Addr]bool, len(addrs))
		for _, a := range addrs {
			ips[a.Addr().Unmap()] = true
		}
		dp.members.Store(&ips)
		if !slices.Equal(addrs, last) {
			ok := true
			for _, f := range fencers {
				if err := f.FenceMembers(addrs); err != nil {
					dp.log.Warn("fence the members' ports from containers", "err", err)
					ok = false
				}
			}
			if ok && len(fencers) > 0 {
				dp.log.Debug("members' ports fenced from containers", "addrs", len(addrs))
			}
			if ok {
				last = addrs
			}
		}
		ch, stop := dp.cfg.Store.WatchTables(idx, fsm.TableNodes)
		select {
		case <-ctx.Done():
		case <-ch:
		case <-t.C:
		}
		stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// MemberAddrs lists the API, Raft and proxy addresses of nodes, sorted; host names are
// resolved (briefly), unparsable addresses skipped.
func MemberAddrs(ctx context.Context, nodes []*statev1.Node) []netip.AddrPort {
	var out []netip.AddrPort
	for _, n := range nodes {
		for _, a := range []string{n.ApiAddr, n.RaftAddr, n.ProxyAddr} {
			if ap, err := netip.ParseAddrPort(a); err == nil {
				out = append(out, ap)
				continue
			}
			host, port, err := net.SplitHostPort(a)
			if err != nil || host == "" {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ips, _ := net.DefaultResolver.LookupNetIP(rctx, "ip4", host)
			cancel()
			for _, ip := range ips {
				if ap, err := netip.ParseAddrPort(net.JoinHostPort(ip.Unmap().String(), port)); err == nil {
					out = append(out, ap)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out)
}
