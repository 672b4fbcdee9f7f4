package wasm

import (
	"context"
	"fmt"
	"net/http"
	goruntime "runtime"
	"sync"
	"time"
)

// Guests run on at most Config.MaxRunning goroutines at once, one fewer than the Go
// scheduler's Ps by default. wazero's compiled code is entered through an assembly
// trampoline the Go runtime never preempts asynchronously: a goroutine executing a guest
// keeps its P until the guest calls the host or returns. Guests on every P would hold off
// every other goroutine of the node for as long as they compute — Raft's heartbeats and
// election timers among them, and a late heartbeat is an election. With one P always free
// of guests, the control plane, the proxy and the timers keep running on time under any
// request load; requests past the bound wait, parked, within their own deadline.

// sharedRun is the process's bound, for executors with no MaxRunning of their own.
var sharedRun = sync.OnceValue(func() chan struct{} {
	return make(chan struct{}, max(1, goruntime.GOMAXPROCS(0)-1))
})

// runSlots returns a bound of n places, or the process's shared one for n <= 0.
func runSlots(n int) chan struct{} {
	if n > 0 {
		return make(chan struct{}, n)
	}
	return sharedRun()
}

// enter takes a place to execute a guest, waiting until ctx ends; release gives it back.
func (e *Executor) enter(ctx context.Context) (release func(), err error) {
	select {
	case e.run <- struct{}{}:
		return e.leave, nil
	default:
	}
	select {
	case e.run <- struct{}{}:
		return e.leave, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *Executor) leave() { <-e.run }

// waitFailed answers a request whose wait (for a warm instance, or a place to run) ended
// with its context: the instance stopped, or the request's deadline passed.
func (in *instance) waitFailed(w http.ResponseWriter, start time.Time, what string) {
	if in.stopCtx.Err() != nil {
		http.Error(w, "instance stopped", http.StatusServiceUnavailable)
		return
	}
	in.fail(w, http.StatusGatewayTimeout, "component timed out",
		fmt.Sprintf("no %s within %s", what, time.Since(start).Round(time.Millisecond)))
}
