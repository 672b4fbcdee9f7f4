package wasm

import (
	"context"
	"errors"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/velocity9/v9/runtime/wasm/internal/interrupt"
	"github.com/velocity9/v9/runtime/wasm/wasmtest"
)

// A rewritten module runs in a runtime that never interrupts guests itself, lets a garbage
// collection through while it loops, and stops with the deadline's exit code (schedYield).
func TestInterruptibleStopsLoop(t *testing.T) {
	bin, err := interrupt.Rewrite(wasmtest.Spin(true, wasmtest.SpinForever...))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	defer rt.Close(ctx)
	if err := instantiateWASI(ctx, rt); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.Instantiate(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := mod.ExportedFunction("spin").Call(cctx)
		done <- err
	}()
	goruntime.GC() // stops the world: waits for the spinning guest to call sched_yield
	select {
	case err := <-done:
		t.Fatalf("spin returned before its deadline: %v", err)
	default:
	}
	select {
	case err := <-done:
		var exit *sys.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != sys.ExitCodeDeadlineExceeded {
			t.Fatalf("spin: %v, want the deadline's exit code", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("spin still running 30 s after its deadline")
	}
}
