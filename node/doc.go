// Package node wires one v9 node: its configuration, the Raft replica (hashicorp/raft over
// raft-boltdb/v2 with fsync, a file snapshot store and a TCP transport), bootstrap and join,
// the write path that forwards to the leader, consistent reads, the API server, the
// leadership owner from package leader with every leader controller registered on it, and
// the node-local data plane from package dataplane (built with the node's config and the
// Cluster and Peers implementations of node/dataplane.go), and the GitHub side from package
// ghub (node/github.go: its loops registered as leader controllers, its webhook handler
// mounted on the API port).
//
// node owns the Raft replica; other packages reach Raft only through the small interfaces
// they declare (leader.Barrier, leader.ScheduleStore, ...), which node implements. node
// imports fsm, leader, rpc and the rest; nothing imports node but cmd.
package node
