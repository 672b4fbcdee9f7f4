package wasm

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/velocity9/v9/runtime"
)

// BenchmarkEnv10k measures one request to a component whose manifest sets 10,000
// environment variables (issue 14: building the environment must cost time linear in
// it). It reports the process's CPU time per request (user + system, all threads) as
// cpu-ms/req next to the wall time.
func BenchmarkEnv10k(b *testing.B) {
	ex := newExecutor(b, Config{Logger: slog.New(slog.DiscardHandler)})
	env := make(map[string]string, 10000)
	for i := range 10000 {
		env[fmt.Sprintf("VAR_%05d", i)] = "value"
	}
	in := startSpec(b, ex, runtime.Spec{
		ID:   "env10k",
		Dir:  rawArtifact(b, "tiny.wasm", tinyCGI("Content-Type: text/plain\n\nhello from wasm\n")),
		Wasm: runtime.WasmSpec{Module: "tiny.wasm"},
		Env:  env,
		// Before the fix one request took seconds of CPU: far from the default deadline
		// on a quiet machine, not on a busy one.
		Timeout: 10 * time.Minute,
	})
	req := httptest.NewRequest(http.MethodGet, "/env10k/bench", nil)
	w := &benchWriter{h: make(http.Header)}
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		w.reset()
		in.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
		n++
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(n), "cpu-ms/req")
}

// cpuTime is the CPU time the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
