// Package replica owns the write and read paths over one node's Raft replica: it commits a
// command through the leader (stamped with the leader's clock and ids; both the future's
// error and the FSM's response checked), forwards it when this node does not lead, retries
// only what was certainly not applied, commits the leader's writes that queue while entries
// are in flight as one batch entry (group commit, group.go), words every failure for the
// caller ("not applied" or "may or may not have been applied"), and serves consistent reads
// (a read index from the leader's barrier, then waiting for this replica's FSM to reach it).
// It also saves and restores operator snapshots (the format is package snapshot's), through
// raft.Restore.
//
// It reaches other nodes only through the Peers interface its user supplies, never opens
// Raft's stores or listeners (node does), and never imports node.
package replica
