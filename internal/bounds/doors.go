package bounds

import (
	"cmp"
	"time"
)

// Doors are the bounds of a node's three listeners. Zero fields take DefaultDoors.
type Doors struct {
	API   Config // users, the console, the CLI, GitHub's webhooks, and the other nodes
	Proxy Config // anyone calling a component
	Raft  Config // the other nodes only (connections; the HTTP fields do not apply)
}

// DefaultDoors are sized for a 2-core node:
//   - the proxy: 4,096 connections (512 from one address), a body read within 60s with no
//     more than 20s of silence;
//   - the API: 1,024 connections (256 from one address), a body (an upload, a snapshot
//     restore) read within 10m with no more than 30s of silence;
//   - Raft: 256 connections (64 from one address: each peer keeps a few), each closed
//     unless its TLS handshake ends within 10s.
//
// One address often stands for many clients (a NAT, a load balancer): raise the per-address
// bounds behind one.
func DefaultDoors() Doors {
	api := Defaults()
	api.MaxConns, api.MaxConnsPerAddr = 1024, 256
	api.BodyTimeout, api.BodyIdle = 10*time.Minute, 30*time.Second
	raft := Defaults()
	raft.MaxConns, raft.MaxConnsPerAddr = 256, 64
	return Doors{API: api, Proxy: Defaults(), Raft: raft}
}

// WithDefaults fills each door's zero fields from DefaultDoors.
func (d Doors) WithDefaults() Doors {
	def := DefaultDoors()
	return Doors{API: fill(d.API, def.API), Proxy: fill(d.Proxy, def.Proxy), Raft: fill(d.Raft, def.Raft)}
}

// fill takes c's non-zero fields over def's.
func fill(c, def Config) Config {
	c.MaxConns = cmp.Or(c.MaxConns, def.MaxConns)
	c.MaxConnsPerAddr = cmp.Or(c.MaxConnsPerAddr, def.MaxConnsPerAddr)
	c.ReadHeaderTimeout = cmp.Or(c.ReadHeaderTimeout, def.ReadHeaderTimeout)
	c.BodyTimeout = cmp.Or(c.BodyTimeout, def.BodyTimeout)
	c.BodyIdle = cmp.Or(c.BodyIdle, def.BodyIdle)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, def.IdleTimeout)
	c.MaxHeaderBytes = cmp.Or(c.MaxHeaderBytes, def.MaxHeaderBytes)
	c.RetryAfter = cmp.Or(c.RetryAfter, def.RetryAfter)
	c.HandshakeTimeout = cmp.Or(c.HandshakeTimeout, def.HandshakeTimeout)
	return c
}
