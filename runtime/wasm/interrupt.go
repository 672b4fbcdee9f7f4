package wasm

import (
	"context"
	"errors"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Interrupting a warm guest. wazero stops a running guest when its context ends only if the
// runtime is built WithCloseOnContextDone, which makes every loop header leave the compiled
// code for a Go function that checks whether the module was closed (and lets the Go
// scheduler stop the goroutine there, for a garbage collection). Go compiled to wasm jumps
// between its basic blocks through a loop at the top of each function, so every branch of
// a Go guest paid that exit: a warm hello-http call took 2.3× as long with it.
//
// Warm modules are therefore compiled without it, from a copy that counts instead
// (internal/interrupt): one more i32 global is decremented at the top of every loop and,
// once in interrupt.Every times, the guest calls its own import of WASI's sched_yield, which
// v9 implements (schedYield): it leaves the compiled code, so the Go scheduler can stop the
// goroutine, and ends the guest with the context's exit code, as wazero would, once the
// request's context is done. A guest thus runs at most interrupt.Every loop iterations —
// tens of microseconds — without the host looking at it. Modules the rewriter refuses keep
// wazero's check.

// schedYield is v9's WASI sched_yield: a rewritten guest calls it now and then, and it ends
// the guest once the context of the call is done.
func schedYield(ctx context.Context, _ api.Module, stack []uint64) {
	if err := ctx.Err(); err != nil {
		code := uint32(sys.ExitCodeContextCanceled)
		if errors.Is(err, context.DeadlineExceeded) {
			code = sys.ExitCodeDeadlineExceeded
		}
		panic(sys.NewExitError(code))
	}
	stack[0] = 0
}
