package keyring

import (
	"context"
	"math/rand/v2"
	"time"
)

// SyncEvery is how often Run takes the keys of the leader and of one other node.
const SyncEvery = 2 * time.Second

// Run keeps this node's keyring in step with the cluster until ctx ends: every SyncEvery
// (with jitter) it takes what the leader shares, and what one other node shares, in turn.
// So a key made on one node (the first key, made on the leader when a secret is first
// sealed; a rotation that missed a node) reaches every node within seconds, without
// waiting for one to need it, and a removal a node missed reaches it too: one machine
// losing its data dir loses no key.
func (c *Cluster) Run(ctx context.Context) {
	next := 0
	for {
		t := time.NewTimer(SyncEvery/2 + rand.N(SyncEvery))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		next = c.syncOnce(ctx, next)
	}
}

// syncOnce takes the keys of the leader and of the next other node after index next; it
// returns the index to start from next time.
func (c *Cluster) syncOnce(ctx context.Context, next int) int {
	var from []string
	if !c.Peers.IsLeader() {
		if a, err := c.Peers.LeaderAPI(); err == nil {
			from = append(from, a)
		}
	}
	if o := others(c.Peers); len(o) > 0 {
		next %= len(o)
		if len(from) == 0 || o[next] != from[0] {
			from = append(from, o[next])
		}
		next++
	}
	for _, addr := range from {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := c.fetch(cctx, addr, false); err != nil {
			c.Log.Debug("keyring: sync keys", "peer", addr, "err", err)
		}
		cancel()
	}
	return next
}

// others returns the other nodes' API addresses, each once, the leader's first.
func others(p Peers) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range p.OtherAPIs() {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
