package node

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestRaftHandshakeDeadline: a connection to the Raft port that never starts its mTLS
// handshake is closed at the door's handshake deadline (so it holds no place among the
// port's connections), while a real node still joins and replicates, over connections
// that idled past that deadline.
func TestRaftHandshakeDeadline(t *testing.T) {
	const deadline = time.Second
	c := NewTestClusterOpts(t, 1, TestOptions{Configure: func(cfg *Config) {
		cfg.Doors.Raft.HandshakeTimeout = deadline
	}})
	l := c.Nodes[0]

	silent, err := net.Dial("tcp", l.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	_ = silent.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = silent.Read(make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent connection was still open after 30s (handshake deadline %s)", deadline)
	}
	if err == nil {
		t.Fatal("a silent connection was sent bytes")
	}
	t.Logf("silent connection closed after %s (%v)", time.Since(start).Round(time.Millisecond), err)

	n2 := c.AddNode(l)
	mustCreate(t, l, "before-idle")
	waitComponent(t, n2, "before-idle")
	// The pooled connections between the nodes now idle past the handshake deadline:
	// it was cleared after their handshakes, so they still carry the next entries.
	time.Sleep(2 * deadline)
	mustCreate(t, c.Leader(t), "after-idle")
	waitComponent(t, n2, "after-idle")
}
