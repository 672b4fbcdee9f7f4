package wasm

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/velocity9/v9/runtime"
)

// BenchmarkInstance measures the per-request cost of Instance.ServeHTTP against raw wazero
// instantiating the same compiled module with a minimal configuration (stdout to a buffer):
// "raw" and "v9" alone, "ratio" interleaving both and reporting v9/raw, and "v9-parallel".
// "hello" is the Go-built example, "tiny" a hand-assembled module that makes v9's own cost
// visible.
func BenchmarkInstance(b *testing.B) {
	ex := newExecutor(b, Config{Logger: slog.New(slog.DiscardHandler)})
	hello, _ := startGuest(b, ex, "hello", nil)
	tiny := startSpec(b, ex, runtime.Spec{
		ID:   "tiny",
		Dir:  rawArtifact(b, "tiny.wasm", tinyCGI("Content-Type: text/plain\n\nhello from wasm\n")),
		Wasm: runtime.WasmSpec{Module: "tiny.wasm"},
	})
	b.Run("hello", func(b *testing.B) { benchInstance(b, hello.(*instance)) })
	b.Run("tiny", func(b *testing.B) { benchInstance(b, tiny.(*instance)) })
}

func benchInstance(b *testing.B, in *instance) {
	rt, compiled := in.mod.rt, in.mod.compiled
	ctx := context.Background()

	var out bytes.Buffer
	rawCfg := wazero.NewModuleConfig().WithName("")
	raw := func() {
		out.Reset()
		mod, err := rt.InstantiateModule(ctx, compiled, rawCfg.WithStdout(&out))
		if err != nil {
			b.Fatal(err)
		}
		if mod != nil {
			_ = mod.Close(ctx)
		}
		if out.Len() == 0 {
			b.Fatal("no output")
		}
	}

	req := benchRequest()
	benchVsRaw(b, in, req, raw)
	b.Run("v9-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			w := &benchWriter{h: make(http.Header)}
			for pb.Next() {
				w.reset()
				in.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Errorf("status %d", w.code)
					return
				}
			}
		})
	})
}

// benchRequest is the request the instance benchmarks send to the hello examples.
func benchRequest() *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/hello/bench", nil)
	req.Header.Set(ScriptNameHeader, "/hello")
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	return req
}

// benchVsRaw runs the sub-benchmarks "raw" (the raw wazero call), "v9" (in.ServeHTTP(req),
// which must answer 200 with a body) and "ratio" (benchRatio of the two), and returns the
// v9 call for the caller's own sub-benchmarks.
func benchVsRaw(b *testing.B, in *instance, req *http.Request, raw func()) (v9 func()) {
	w := &benchWriter{h: make(http.Header)}
	v9 = func() {
		w.reset()
		in.ServeHTTP(w, req)
		if w.code != http.StatusOK || w.n == 0 {
			b.Fatalf("status %d, %d bytes", w.code, w.n)
		}
	}
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw()
		}
	})
	b.Run("v9", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v9()
		}
	})
	b.Run("ratio", func(b *testing.B) { benchRatio(b, raw, v9) })
	return v9
}

// benchRatio interleaves raw and v9 and reports their mean times and v9/raw.
func benchRatio(b *testing.B, raw, v9 func()) {
	var tRaw, tV9 time.Duration
	n := 0
	time1 := func(f func()) time.Duration {
		t0 := time.Now()
		f()
		return time.Since(t0)
	}
	for b.Loop() {
		// Alternate who goes first, so neither always pays for the other's garbage.
		if n%2 == 0 {
			tRaw += time1(raw)
			tV9 += time1(v9)
		} else {
			tV9 += time1(v9)
			tRaw += time1(raw)
		}
		n++
	}
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(n), "raw-ns/req")
	b.ReportMetric(float64(tV9.Nanoseconds())/float64(n), "v9-ns/req")
	b.ReportMetric(float64(tV9)/float64(tRaw), "v9/raw")
}

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// benchWriter is a ResponseWriter that keeps only the status and the byte count.
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
func (w *benchWriter) reset() {
	clear(w.h)
	w.code, w.n = 0, 0
}
