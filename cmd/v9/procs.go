package main

import (
	"os"
	goruntime "runtime"
)

// reserveControlP gives the Go scheduler one P more than it would take (its default follows
// the CPUs and the cgroup's CPU limit), unless $GOMAXPROCS says otherwise. wasm guests
// execute on at most GOMAXPROCS-1 goroutines at once, since the Go runtime cannot preempt
// them (runtime/wasm/run.go): so they may still use every CPU, and Raft, the proxy and the
// timers keep a P of their own, which the kernel time-slices with the guests' threads.
func reserveControlP() {
	if os.Getenv("GOMAXPROCS") == "" {
		goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0) + 1)
	}
}
