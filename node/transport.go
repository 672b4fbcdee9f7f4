package node

import (
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

// errPartitioned is what a dial returns while the node is cut off (tests only).
var errPartitioned = errors.New("network partitioned")

// faults cuts a node off the network: its Raft connections close, its dials fail, and
// connections that reach it are dropped. Only tests turn it on; in production it stays off
// and costs one mutex per dial and accept.
type faults struct {
	partitioned atomic.Bool
	mu          sync.Mutex
	conns       map[net.Conn]struct{}
}

func (f *faults) isPartitioned() bool { return f.partitioned.Load() }

// track registers a connection so that a partition closes it. A connection that arrives
// while the node is partitioned is closed at once (the check and the registration happen
// under one lock, so none slips through a partition that starts meanwhile).
func (f *faults) track(c net.Conn) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.partitioned.Load() {
		c.Close()
		return nil, errPartitioned
	}
	if f.conns == nil {
		f.conns = map[net.Conn]struct{}{}
	}
	f.conns[c] = struct{}{}
	return &trackedConn{Conn: c, f: f}, nil
}

func (f *faults) setPartitioned(on bool) {
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
	f *faults
}

// Read and Write fail while partitioned, whatever the connection's history.
func (c *trackedConn) Read(b []byte) (int, error) {
	if c.f.partitioned.Load() {
		return 0, errPartitioned
	}
	return c.Conn.Read(b)
}

func (c *trackedConn) Write(b []byte) (int, error) {
	if c.f.partitioned.Load() {
		return 0, errPartitioned
	}
	return c.Conn.Write(b)
}

func (c *trackedConn) Close() error {
	c.f.mu.Lock()
	delete(c.f.conns, c.Conn)
	c.f.mu.Unlock()
	return c.Conn.Close()
}

// streamLayer is a TCP raft.StreamLayer with fault injection, over mutual TLS when the node
// has certificates (Nomad's RaftLayer is the model): both sides must show a node
// certificate of the cluster CA, so nothing else can speak Raft to a node.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	f         *faults
	tls       *auth.NodeTLS // nil: plain TCP (InsecureNoTLS)
}

// raftALPN names the Raft protocol in TLS handshakes.
const raftALPN = "v9-raft"

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		tc, err := s.f.track(c)
		if err != nil {
			continue // partitioned: dropped
		}
		return tc, nil
	}
}

func (s *streamLayer) Close() error { return s.ln.Close() }

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.f.isPartitioned() {
		return nil, errPartitioned
	}
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		tc := tls.Client(c, s.tls.ClientConfig(raftALPN))
		_ = tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("raft tls handshake with %s: %w", addr, err)
		}
		_ = tc.SetDeadline(time.Time{})
		c = tc
	}
	return s.f.track(c)
}
