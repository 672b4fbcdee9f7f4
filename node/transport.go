package node

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// errPartitioned is what a dial returns while the node is cut off (tests only).
var errPartitioned = errors.New("network partitioned")

// faults cuts a node off the network: its Raft connections close, its dials fail, and
// connections that reach it are dropped. Only tests turn it on; in production it stays off
// and costs one mutex per dial and accept.
type faults struct {
	mu          sync.Mutex
	partitioned bool
	conns       map[net.Conn]struct{}
}

func (f *faults) isPartitioned() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.partitioned
}

func (f *faults) track(c net.Conn) net.Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		f.conns = map[net.Conn]struct{}{}
	}
	f.conns[c] = struct{}{}
	return &trackedConn{Conn: c, f: f}
}

func (f *faults) setPartitioned(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partitioned = on
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

func (c *trackedConn) Close() error {
	c.f.mu.Lock()
	delete(c.f.conns, c.Conn)
	c.f.mu.Unlock()
	return c.Conn.Close()
}

// streamLayer is a TCP raft.StreamLayer with fault injection.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	f         *faults
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		if s.f.isPartitioned() {
			c.Close()
			continue
		}
		return s.f.track(c), nil
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
	return s.f.track(c), nil
}
