package main

import (
	"github.com/spf13/pflag"

	"github.com/velocity9/v9/internal/bounds"
	"github.com/velocity9/v9/proxy"
)

// registerDoorFlags adds the bounds of the node's doors (docs/operations.md, "Bounds") to
// an agent's or a dev cluster's flags, with the defaults sized for a 2-core node.
func registerDoorFlags(f *pflag.FlagSet, d *bounds.Doors, r *proxy.Bounds) {
	*d, *r = bounds.DefaultDoors(), proxy.DefaultBounds()
	for _, door := range []struct {
		name string
		c    *bounds.Config
	}{{"api", &d.API}, {"proxy", &d.Proxy}, {"raft", &d.Raft}} {
		f.IntVar(&door.c.MaxConns, door.name+"-max-conns", door.c.MaxConns, door.name+" port: connections open at once (more are refused, with 503 and Retry-After on HTTP ports; -1: unbounded)")
		f.IntVar(&door.c.MaxConnsPerAddr, door.name+"-max-conns-per-addr", door.c.MaxConnsPerAddr, door.name+" port: connections open at once from one client IP (more are refused, with 429 and Retry-After on HTTP ports; -1: unbounded)")
	}
	for _, door := range []struct {
		name string
		c    *bounds.Config
	}{{"api", &d.API}, {"proxy", &d.Proxy}} {
		f.DurationVar(&door.c.ReadHeaderTimeout, door.name+"-header-timeout", door.c.ReadHeaderTimeout, door.name+" port: time to send a request's headers")
		f.DurationVar(&door.c.BodyTimeout, door.name+"-body-timeout", door.c.BodyTimeout, door.name+" port: time to send a whole request body (408 or a failed stream after)")
		f.DurationVar(&door.c.BodyIdle, door.name+"-body-idle", door.c.BodyIdle, door.name+" port: longest silence within a request body or client stream")
		f.DurationVar(&door.c.IdleTimeout, door.name+"-idle-timeout", door.c.IdleTimeout, door.name+" port: how long an idle keep-alive connection stays open")
		f.IntVar(&door.c.MaxHeaderBytes, door.name+"-max-header-bytes", door.c.MaxHeaderBytes, door.name+" port: size of a request's header section (431 past it)")
	}
	f.DurationVar(&d.Raft.HandshakeTimeout, "raft-handshake-timeout", d.Raft.HandshakeTimeout, "raft port: time for a connection's TLS handshake (its first bytes without TLS); a silent connection is closed after it")
	f.IntVar(&r.MaxHeaders, "proxy-max-headers", r.MaxHeaders, "proxy: header fields in one request (431 past it)")
	f.DurationVar(&r.QueueWait, "proxy-queue-wait", r.QueueWait, "proxy: longest wait for a place among a component's requests in flight (limits.concurrency per instance, as many queued; 429 after)")
}
