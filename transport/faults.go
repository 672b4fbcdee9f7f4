package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/auth"
)

// ErrPartitioned is what a dial returns while the node is cut off (tests only).
var ErrPartitioned = errors.New("network partitioned")

// Faults cuts a node off the network: its Raft connections close, its dials fail, and
// connections that reach it are dropped. Only tests turn it on; in production it stays off
// and costs one mutex per dial and accept.
type Faults struct {
	partitioned atomic.Bool
	mu          sync.Mutex
	conns       map[net.Conn]struct{}
}

// Partitioned reports whether the node is cut off.
func (f *Faults) Partitioned() bool { return f.partitioned.Load() }

// Track registers a connection so that a partition closes it. A connection that arrives
// while the node is partitioned is closed at once (the check and the registration happen
// under one lock, so none slips through a partition that starts meanwhile).
func (f *Faults) Track(c net.Conn) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.partitioned.Load() {
		c.Close()
		return nil, ErrPartitioned
	}
	if f.conns == nil {
		f.conns = map[net.Conn]struct{}{}
	}
	f.conns[c] = struct{}{}
	return &trackedConn{Conn: c, f: f}, nil
}

// SetPartitioned cuts the node off (on) or reconnects it.
func (f *Faults) SetPartitioned(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partitioned.Store(on)
	if on {
		for c := range f.conns {
			c.Close()
		}
		f.conns = nil
	}
}

type trackedConn struct {
	net.Conn
	f *Faults
}

// Read and Write fail while partitioned, whatever the connection's history.
func (c *trackedConn) Read(b []byte) (int, error) {
	if c.f.partitioned.Load() {
		return 0, ErrPartitioned
	}
	return c.Conn.Read(b)
}

func (c *trackedConn) Write(b []byte) (int, error) {
	if c.f.partitioned.Load() {
		return 0, ErrPartitioned
	}
	return c.Conn.Write(b)
}

func (c *trackedConn) Close() error {
	c.f.mu.Lock()
	delete(c.f.conns, c.Conn)
	c.f.mu.Unlock()
	return c.Conn.Close()
}

// StreamLayer is a TCP raft.StreamLayer with fault injection, over mutual TLS when the node
// has certificates (Nomad's RaftLayer is the model): both sides must show a node
// certificate of the cluster CA, so nothing else can speak Raft to a node.
type StreamLayer struct {
	Listener  net.Listener // TLS-wrapped already when TLS is set
	Advertise net.Addr
	F         *Faults
	TLS       *auth.NodeTLS // nil: plain TCP (InsecureNoTLS)
	// HandshakeTimeout bounds an accepted connection's TLS handshake (its first bytes
	// without TLS); <= 0: unbounded.
	HandshakeTimeout time.Duration
}

// RaftALPN names the Raft protocol in TLS handshakes.
const RaftALPN = "v9-raft"

var _ raft.StreamLayer = (*StreamLayer)(nil)

// Accept returns the next Raft connection that is not cut off by a partition.
func (s *StreamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, err := s.F.Track(withHandshakeDeadline(c, s.HandshakeTimeout))
		if err != nil {
			continue // partitioned: dropped
		}
		return tc, nil
	}
}

// Close closes the listener.
func (s *StreamLayer) Close() error { return s.Listener.Close() }

// Addr is the advertised Raft address.
func (s *StreamLayer) Addr() net.Addr { return s.Advertise }

// Dial connects to a Raft peer, over mutual TLS when the layer has certificates.
func (s *StreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.F.Partitioned() {
		return nil, ErrPartitioned
	}
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if s.TLS != nil {
		tc := tls.Client(c, s.TLS.ClientConfig(RaftALPN))
		_ = tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("raft tls handshake with %s: %w", addr, err)
		}
		_ = tc.SetDeadline(time.Time{})
		c = tc
	}
	return s.F.Track(c)
}

// DialContext dials with d unless the node is partitioned, and tracks the connection (for
// HTTP clients between nodes). A partitioned dial fails as a refused one would.
func (f *Faults) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if f.Partitioned() {
			return nil, &net.OpError{Op: "dial", Net: network, Err: ErrPartitioned}
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return f.Track(c)
	}
}
