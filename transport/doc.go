// Package transport owns a node's network connections below the API: the Raft stream layer
// (TCP, over mutual TLS with node certificates), the API port's listener that serves plain
// HTTP to users and mutual TLS to nodes on one port, and the fault injection (partitions)
// that tests use to cut a node off. It knows nothing of Raft's state, the API's procedures
// or the cluster's membership, and never imports node.
package transport
