// Package observe serves components' logs and request statistics across the cluster: the
// lines of this node's log ring and the buckets of its stats rollups (rollup.go: 10 s for an
// hour, 1 min for 24 h, with latency histograms, kept in a file of the data dir across
// restarts; the proxy records into them), merged with every other node's, which it reaches
// through the Peers interface it declares (the same service on their API, asked for their
// own data only, so a request fans out one level).
//
// It never writes to the replicated state, never touches Raft and never imports node; the
// only file it writes is its rollups file.
package observe
