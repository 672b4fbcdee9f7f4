// Package leader owns leadership and the controllers that act only while this node leads
// the Raft cluster.
//
// The Owner is the one place that follows leadership (hashicorp/raft's LeaderCh, passed in as
// a channel): on gaining it, a Raft barrier so the local state holds every entry earlier
// leaders committed, then every registered Controller starts; on losing it, every controller
// is stopped and waited for before anything else happens, so a node never runs two terms'
// controllers at once. Controllers keep their soft state (heartbeats heard, rollout clocks,
// cool-downs, load windows) for one term only: it is dropped when their Run returns.
//
// The controllers of the control plane live here, each behind a narrow interface it
// declares for what it reads and writes, and each owns its own soft state; none resets
// another's:
//   - Scheduler commits sched.ScheduleWith plans after state changes.
//   - Liveness takes heartbeats and marks silent nodes down and returning nodes ready.
//   - Rollouts fails a rollout that misses its deadline (sched.Rollouts decides).
//   - Autoscaler commits sched.Autoscale decisions from the nodes' load.
//
// Other packages register their own leader loops (GitHub builds, polling, commit statuses)
// through the Controller interface. Decisions stay pure in sched; this package is plumbing:
// clocks, tickers, retries and writes. It must never import node or touch Raft itself.
package leader
