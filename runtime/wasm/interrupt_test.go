package wasm

import (
	"context"
	"errors"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/velocity9/v9/runtime/wasm/wasmtest"
)

// spinModule exports spin, a function of its own body with one global of its own, and
// imports WASI's sched_yield if yield is set.
func spinModule(yield bool, body ...byte) []byte {
	code := wasmtest.Cat([]byte{byte(len(body) + 1), 0x00}, body)
	imports, spin := []byte{}, byte(0)
	if yield {
		imports = wasmtest.Section(2, wasmtest.Cat([]byte{0x01}, wasmtest.Str("wasi_snapshot_preview1"),
			wasmtest.Str("sched_yield"), []byte{0x00, 0x00})...)
		spin = 1
	}
	return wasmtest.Cat(
		wasmtest.Header,
		wasmtest.Section(1, 0x01, 0x60, 0x00, 0x01, 0x7f), // () -> i32
		imports,
		wasmtest.Section(3, 0x01, 0x00),
		wasmtest.Section(6, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b),
		wasmtest.Section(7, wasmtest.Cat([]byte{0x01}, wasmtest.Str("spin"), []byte{0x00, spin})...),
		wasmtest.Section(10, wasmtest.Cat([]byte{0x01}, code)...),
	)
}

// loop br 0 end unreachable
var spinForever = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x00, 0x0b}

// A module made interruptible runs in a runtime that never interrupts guests itself, lets
// a garbage collection through while it loops, and stops with the deadline's exit code.
func TestInterruptibleStopsLoop(t *testing.T) {
	bin, err := interruptible(spinModule(true, spinForever...))
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

// What the rewriter cannot decode, or a module without sched_yield, is left to wazero's
// own check, not rewritten wrongly.
func TestInterruptibleRefuses(t *testing.T) {
	for name, bin := range map[string][]byte{
		"simd":         spinModule(true, 0xfd, 0x0c, 0x0b),
		"truncated":    spinModule(true, spinForever...)[:60],
		"no magic":     []byte("not wasm at all"),
		"no yield":     spinModule(false, spinForever...),
		"gc blocktype": spinModule(true, 0x03, 0x63, 0x00, 0x0b, 0x00, 0x0b),
	} {
		if _, err := interruptible(bin); !errors.Is(err, errNotRewritable) {
			t.Errorf("%s: %v, want errNotRewritable", name, err)
		}
	}
}

// interruptible reads modules uploaded by anyone: it must never panic, and what it returns
// must decode again.
func FuzzInterruptible(f *testing.F) {
	f.Add(spinModule(true, spinForever...))
	f.Add(spinModule(true, 0x02, 0x7f, 0x41, 0x01, 0x0b, 0x1a, 0x03, 0x00, 0x0e, 0x01, 0x00, 0x00, 0x0b, 0x00, 0x0b))
	f.Add(spinModule(true, 0xfc, 0x0a, 0x00, 0x00, 0x28, 0x02, 0x10, 0x1a, 0x00, 0x0b))
	f.Add(wasmtest.TinyCGI("Status: 200\n\nhi"))
	f.Fuzz(func(t *testing.T, bin []byte) {
		out, err := interruptible(bin)
		if err != nil {
			return
		}
		if _, err := interruptible(out); err != nil {
			t.Fatalf("rewritten module does not decode: %v", err)
		}
	})
}
