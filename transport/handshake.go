package transport

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"
)

// handshakeConn is an accepted Raft connection with a deadline on its opening: the TLS
// handshake (or, without TLS, the first bytes) must end by it, or the read fails and
// hashicorp/raft closes the connection, freeing its place among the door's connections.
// The deadline is cleared once the connection has opened: a peer's pooled connection may
// then idle as long as Raft keeps it.
type handshakeConn struct {
	net.Conn
	open atomic.Bool
}

// withHandshakeDeadline arms c's opening deadline; d <= 0 leaves c unbounded.
func withHandshakeDeadline(c net.Conn, d time.Duration) net.Conn {
	if d <= 0 {
		return c
	}
	_ = c.SetDeadline(time.Now().Add(d))
	return &handshakeConn{Conn: c}
}

// Read completes the TLS handshake first (Raft reads before it writes on an accepted
// connection), then clears the deadline.
func (c *handshakeConn) Read(b []byte) (int, error) {
	if c.open.Load() {
		return c.Conn.Read(b)
	}
	if tc, ok := c.Conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return 0, err
		}
		c.opened()
		return tc.Read(b)
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.opened()
	}
	return n, err
}

func (c *handshakeConn) opened() {
	c.open.Store(true)
	_ = c.Conn.SetDeadline(time.Time{})
}
