package wasm

import (
	"context"
	"fmt"
	"net/http"
	goruntime "runtime"
	"slices"
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
//
// A place is held only while guest code executes: a fresh request instantiates its module
// (wazero's own Go code, preemptible) before it takes one, and runs _start within it
// (instance.runFresh).
//
// A freed place is handed to nobody in particular: the first goroutine that asks for one
// after a release takes it, and a waiter is only woken to ask again. A channel would give
// it at once to the longest waiter — a goroutine that must then wait for a P, behind every
// other runnable goroutine of the node, while the place it holds stays unused. Under load
// every request then queued behind places that were mostly idle (a convoy: with one place
// at GOMAXPROCS 2, BenchmarkProxyWasmVsPlainGo/tiny-guest requests waited 7 ms at p90 for
// guests that run for 16 µs).

// bound is a counting semaphore of guests executing, without hand-off (see above).
type bound struct {
	mu      sync.Mutex
	used    int
	size    int
	waiters []chan struct{} // parked in enter, oldest first; each woken (closed) once
}

func newBound(size int) *bound { return &bound{size: size} }

// sharedRun is the process's bound, for executors with no MaxRunning of their own.
var sharedRun = sync.OnceValue(func() *bound {
	return newBound(max(1, goruntime.GOMAXPROCS(0)-1))
})

// runSlots returns a bound of n places, or the process's shared one for n <= 0.
func runSlots(n int) *bound {
	if n > 0 {
		return newBound(n)
	}
	return sharedRun()
}

// enter takes a place, waiting until one is free or ctx ends.
func (b *bound) enter(ctx context.Context) error {
	b.mu.Lock()
	for again := false; b.used >= b.size; again = true {
		if ctx.Err() != nil {
			b.mu.Unlock()
			return ctx.Err()
		}
		// A waiter woken to find the place taken again waits at the front.
		ch := make(chan struct{})
		if again {
			b.waiters = slices.Insert(b.waiters, 0, ch)
		} else {
			b.waiters = append(b.waiters, ch)
		}
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		b.mu.Lock()
		if ctx.Err() != nil {
			if i := slices.Index(b.waiters, ch); i >= 0 {
				b.waiters = slices.Delete(b.waiters, i, i+1)
			} else {
				b.wakeOne() // woken, but leaving: the wake-up goes to the next waiter
			}
			b.mu.Unlock()
			return ctx.Err()
		}
	}
	b.used++
	b.mu.Unlock()
	return nil
}

// leave gives a place back and wakes the oldest waiter to ask for it.
func (b *bound) leave() {
	b.mu.Lock()
	b.used--
	b.wakeOne()
	b.mu.Unlock()
}

// wakeOne wakes the oldest waiter. Called with b.mu held.
func (b *bound) wakeOne() {
	if len(b.waiters) > 0 {
		close(b.waiters[0])
		b.waiters = slices.Delete(b.waiters, 0, 1)
	}
}

// enter takes a place to execute a guest, waiting until ctx ends; release gives it back.
func (e *Executor) enter(ctx context.Context) (release func(), err error) {
	if err := e.run.enter(ctx); err != nil {
		return nil, err
	}
	return e.run.leave, nil
}

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
