// Package observe serves components' logs and request statistics across the cluster: the
// lines of this node's log ring and the buckets of its proxy stats, merged with every other
// node's, which it reaches through the Peers interface it declares (the same service on
// their API, asked for their own data only, so a request fans out one level).
//
// It only reads: it never writes to the replicated state, never touches Raft and never
// imports node.
package observe
