package node

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/velocity9/v9/internal/raftlog"
	"github.com/velocity9/v9/transport"
)

// raftParts are the pieces of a Raft replica a node owns and closes.
type raftParts struct {
	r         *raft.Raft
	store     *raftboltdb.BoltStore
	transport *transport.NetworkTransport
	snaps     raft.SnapshotStore
	stream    *transport.StreamLayer
	hasState  bool
}

func raftConfig(c *Config) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	// A removed node keeps its Raft running (the leader hands leadership over before it
	// is removed): it learns of its removal, stops serving, and may be added again.
	rc.ShutdownOnRemove = false
	rc.HeartbeatTimeout = c.Raft.HeartbeatTimeout
	rc.ElectionTimeout = c.Raft.ElectionTimeout
	rc.LeaderLeaseTimeout = c.Raft.LeaderLeaseTimeout
	rc.CommitTimeout = c.Raft.CommitTimeout
	rc.SnapshotThreshold = c.Raft.SnapshotThreshold
	rc.SnapshotInterval = c.Raft.SnapshotInterval
	rc.TrailingLogs = c.Raft.TrailingLogs
	rc.Logger = raftlog.New(c.Logger.With("node", c.ID), "raft")
	return rc
}

// openRaft opens the stores in DataDir/raft and starts the replica. It does not bootstrap.
func openRaft(c *Config, fsm raft.FSM, f *transport.Faults) (*raftParts, error) {
	dir := filepath.Join(c.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	p := &raftParts{}
	var err error
	p.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), NoSync: c.Raft.NoSync})
	if err != nil {
		return nil, fmt.Errorf("open raft store: %w", err)
	}
	fail := func(err error) (*raftParts, error) {
		p.close()
		return nil, err
	}
	p.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, raftlog.New(c.Logger.With("node", c.ID), "snapshot"))
	if err != nil {
		return fail(fmt.Errorf("open snapshot store: %w", err))
	}
	logs, err := raft.NewLogCache(512, p.store)
	if err != nil {
		return fail(err)
	}
	p.hasState, err = raft.HasExistingState(logs, p.store, p.snaps)
	if err != nil {
		return fail(fmt.Errorf("read raft state: %w", err))
	}

	ln, err := net.Listen("tcp", c.RaftAddr)
	if err != nil {
		return fail(fmt.Errorf("listen raft: %w", err))
	}
	adv := ln.Addr()
	if c.RaftAdvertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", c.RaftAdvertise); err != nil {
			ln.Close()
			return fail(fmt.Errorf("raft advertise address: %w", err))
		}
	} else if ta := adv.(*net.TCPAddr); ta.IP.IsUnspecified() {
		ln.Close()
		return fail(fmt.Errorf("raft address %s is not advertisable: set --raft-advertise", c.RaftAddr))
	}
	ln = c.Doors.Raft.Listen(ln, nil) // over the bounds: closed (only nodes dial this port)
	if c.TLS != nil {
		ln = tls.NewListener(ln, c.TLS.ServerConfig(true, transport.RaftALPN))
	}
	p.stream = &transport.StreamLayer{Listener: ln, Advertise: adv, F: f, TLS: c.TLS, HandshakeTimeout: c.Doors.Raft.HandshakeTimeout}
	p.transport = transport.NewNetworkTransport(&raft.NetworkTransportConfig{
		Stream:  p.stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  raftlog.New(c.Logger.With("node", c.ID), "raft-net"),
	})

	p.r, err = raft.NewRaft(raftConfig(c), fsm, logs, p.store, p.snaps, p.transport)
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}
	return p, nil
}

// close stops Raft and closes the stores. It is safe on a partly opened replica.
func (p *raftParts) close() error {
	var first error
	if p.r != nil {
		if err := p.r.Shutdown().Error(); err != nil {
			first = err
		}
	}
	if p.transport != nil {
		p.transport.Close()
	} else if p.stream != nil {
		p.stream.Close()
	}
	if p.store != nil {
		if err := p.store.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
