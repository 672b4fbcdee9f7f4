package wasm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/velocity9/v9/runtime"
)

// BenchmarkWarm measures warm instances (wasm.abi = "http") with examples/hello-http:
// "ratio" is P2 for warm mode, v9's per-request cost (Instance.ServeHTTP on a warm pool)
// over a raw wazero call of the same export of the same module, as built, on an instance
// initialized once in a runtime of wazero's defaults, with the same request bytes on stdin; "at-zero" (P1c) is a request to a pool emptied first, so that it
// waits for one initialization. Run with -benchtime 2s.
func BenchmarkWarm(b *testing.B) {
	ex := newExecutor(b, Config{Logger: nopLogger()})
	inst, _ := startGuest(b, ex, "hellohttp", func(s *runtime.Spec) {
		s.Wasm.ABI = ABIHTTP
		s.Concurrency = 1
	})
	in := inst.(*instance)
	req := benchRequest()

	ctx := context.Background()
	var stdin bytes.Reader
	var stdout bytes.Buffer
	wire := appendRequest(nil, req)
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	bin, err := os.ReadFile(filepath.Join(guestDir, "hellohttp.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName("").
		WithStdin(&stdin).WithStdout(&stdout).WithStartFunctions("_initialize"))
	if err != nil {
		b.Fatal(err)
	}
	defer mod.Close(ctx)
	serve := mod.ExportedFunction(serveExport)
	raw := func() {
		stdin.Reset(wire)
		stdout.Reset()
		if _, err := serve.Call(ctx); err != nil || stdout.Len() == 0 {
			b.Fatalf("raw call: %v, %d bytes", err, stdout.Len())
		}
	}
	v9 := benchVsRaw(b, in, req, raw)
	b.Run("at-zero", func(b *testing.B) {
		var total time.Duration
		n := 0
		for b.Loop() {
			b.StopTimer()
			for deadline := time.Now().Add(30 * time.Second); in.warm.size() > 0; {
				in.warm.reap(0)
				if time.Now().After(deadline) {
					b.Fatal("pool never emptied")
				}
				time.Sleep(time.Millisecond)
			}
			b.StartTimer()
			t0 := time.Now()
			v9()
			total += time.Since(t0)
			n++
		}
		b.ReportMetric(float64(total.Microseconds())/1000/float64(n), "first-ms")
	})
}
