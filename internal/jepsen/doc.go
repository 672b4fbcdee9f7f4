// Package jepsen checks that v9's component API is linearizable while nodes crash: a
// Jepsen-style test (storm_test.go) runs three real `v9 agent` processes, has concurrent
// clients on every node create, update, read (consistent) and delete components on a few
// names, kills a random node (the leader half the time) with SIGKILL every few seconds and
// restarts it, then checks the recorded history of every name with porcupine.
//
// This package owns the sequential model of one component name (model.go), the reading of
// an API answer as a history outcome (outcome.go) and the per-name check with its HTML
// visualization (check.go). It is test tooling: the product never imports it, and it never
// imports node (it reaches the cluster only through rpc/client, as a user would).
//
// `make jepsen` runs the long storm; the short one is TestNoRaceJepsen in `make test`'s
// second pass.
package jepsen
