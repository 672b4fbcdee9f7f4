// Package dataplane is one node's local data plane: it makes the node run what the
// replicated state says it owns and serve it.
//
// It owns the reconciler (start, stop, restart with backoff, adopt, report what it
// observes), the routing snapshot the proxy reads on every request, on-demand wasm
// instances (components scaled to zero), the artifact store's replication, fetches from
// peers and garbage collection, the executors and the reaper that fences exclusive
// containers of a crashed agent, the heartbeat that renews this node's lease, and the
// self-fencing of exclusive instances when that lease runs out.
//
// It works from the local replica (an fsm.Store) so that a node keeps serving while the
// cluster has no leader or no quorum. Everything else it needs of the node (writes through
// the leader, a consistent barrier, heartbeats, peers' artifacts, a log sink) comes through
// the small interfaces declared in dataplane.go.
//
// It must never import node, touch Raft, or take a lock or scan state on the request path:
// the proxy's Lookup reads an immutable snapshot.
package dataplane
