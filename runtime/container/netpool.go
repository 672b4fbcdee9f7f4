package container

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// A pool of namespaces already connected to the bridge takes the CNI plugins off the cold
// start's path: Start takes one, and the pool refills in the background once the start is
// done. Pooled namespaces belong to no container; after a crash of the agent, gcNetNS
// disconnects and removes them (and any other namespace of this node no container names).

// DefaultNetPool is how many connected namespaces an executor keeps ready by default.
const DefaultNetPool = 2

type pooledNS struct {
	path string
	ip   netip.Addr
}

// take returns a pooled namespace, or ok false when the pool is empty.
func (n *network) take() (ns pooledNS, ok bool) {
	select {
	case ns = <-n.pool:
		return ns, true
	default:
		return pooledNS{}, false
	}
}

// refill tops the pool up in the background, one namespace at a time; a refill already
// under way, or a closed network, makes it do nothing.
func (n *network) refill() {
	n.poolMu.Lock()
	defer n.poolMu.Unlock()
	if n.refilling || n.closed || cap(n.pool) == 0 {
		return
	}
	n.refilling = true
	n.refillDone = make(chan struct{})
	go func() {
		defer close(n.refillDone)
		for {
			n.poolMu.Lock()
			if n.closed || len(n.pool) >= cap(n.pool) {
				n.refilling = false
				n.poolMu.Unlock()
				return
			}
			n.poolMu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			path, ip, err := n.attach(ctx)
			cancel()
			if err != nil {
				n.log.Warn("prepare a network namespace for the pool", "err", err)
				n.poolMu.Lock()
				n.refilling = false
				n.poolMu.Unlock()
				return
			}
			n.pool <- pooledNS{path, ip} // only refill sends: never blocks past cap
		}
	}()
}

// waitRefill waits for a refill under way to finish.
func (n *network) waitRefill() {
	n.poolMu.Lock()
	done := n.refillDone
	n.poolMu.Unlock()
	if done != nil {
		<-done
	}
}

// close stops refilling and tears the pooled namespaces down.
func (n *network) close() {
	n.poolMu.Lock()
	n.closed = true
	n.poolMu.Unlock()
	n.waitRefill()
	for {
		ns, ok := n.take()
		if !ok {
			return
		}
		if err := n.detach(context.Background(), ns.path); err != nil {
			n.log.Warn("tear down a pooled network namespace", "netns", ns.path, "err", err)
		}
	}
}

// gc tears down every namespace in this node's directory that is not in use: inUse holds
// the paths the node's containers name. Called before the pool is first filled.
func (n *network) gc(ctx context.Context, inUse map[string]bool) {
	entries, err := os.ReadDir(n.nsDir)
	if err != nil {
		return
	}
	for _, de := range entries {
		p := filepath.Join(n.nsDir, de.Name())
		if inUse[p] {
			continue
		}
		n.log.Info("removing a network namespace no container uses", "netns", p)
		if err := n.detach(ctx, p); err != nil {
			n.log.Warn("remove an unused network namespace", "netns", p, "err", err)
		}
	}
}
