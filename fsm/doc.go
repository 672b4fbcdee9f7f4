// Package fsm owns v9's replicated state machine: the entities of a cluster (components,
// deployments, nodes, placements, users, API tokens, GitHub links), the commands that change
// them, snapshots, and the read queries every other package uses.
//
// Apply is pure and deterministic: no clock, randomness or I/O. Times and ids arrive inside the
// command, stamped by the leader. A bad command never panics; it yields an error value that
// travels back to the writer through the Raft future's response. Readers get copies, never
// pointers into the live state, and can block until the state passes a Raft index or until
// one of the tables they read changes (WaitTables over per-table indexes), so that a write
// wakes only the watchers of the tables it changed.
//
// A log entry holds one command, or a batch of them (batch.go) that apply one after the
// other at the entry's index, each with its own result.
//
// A component spec is checked by package spec (ValidSpec delegates to spec.Check), the same
// rules the manifest, the CLI and the API use; spec is pure, so Apply stays deterministic.
// fsm imports nothing else of v9's but the generated types.
package fsm
