// Package node wires one v9 node: its configuration, the Raft replica (hashicorp/raft over
// raft-boltdb/v2 with fsync, a file snapshot store and a TCP transport), bootstrap and join,
// the write path that forwards to the leader, consistent reads, and the API server.
//
// node is the only package that touches Raft. It imports fsm, rpc and the rest; nothing
// imports node but cmd.
package node
