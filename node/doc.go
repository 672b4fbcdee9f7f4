// Package node wires one v9 node: its configuration, the Raft replica (hashicorp/raft over
// raft-boltdb/v2 with fsync, a file snapshot store and the transport package's stream
// layer), bootstrap, join and membership changes, the API and proxy servers, and every room
// that does the work: the write and read paths and operator snapshots of package replica
// (node/apply.go, node/snapshot.go: node supplies the peers to forward to), the leadership
// owner of package leader with every leader controller registered on it
// (node/leadership.go), the node-local data plane of package dataplane (node/dataplane.go),
// the GitHub side of package ghub (node/github.go), and the cluster keyring of package
// keyring (node/secrets.go).
//
// node owns the Raft replica's lifetime; other packages reach Raft only through what they
// are handed (replica.Replica) or the small interfaces they declare (leader.Barrier,
// replica.Peers, keyring.Peers, dataplane.Cluster, ...), which node implements. It holds no
// logic of its own beyond that wiring. node imports the rest; nothing imports node but cmd.
package node
