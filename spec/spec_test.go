package spec

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]uint64{
		"0": 0, "1": 1, "1Ki": 1024, "128Mi": 128 << 20, "2Gi": 2 << 30, " 1Ti ": 1 << 40, "16777216": 16 << 20,
	} {
		got, err := ParseMemory(in)
		if err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Mi", "1 Mi", "1mi", "1M", "128MB", "1.5Gi", "+1", "-1", "0x10",
		"18446744073709551616", "17179869184Gi", "99999999999999Ti"} {
		if got, err := ParseMemory(in); err == nil {
			t.Errorf("ParseMemory(%q) = %d, want an error", in, got)
		}
	}
	for b, want := range map[uint64]string{0: "0", 1000: "1000", 1 << 20: "1Mi", 1536 << 10: "1536Ki", 3 << 30: "3Gi", 2 << 40: "2Ti"} {
		if got := FormatMemory(b); got != want {
			t.Errorf("FormatMemory(%d) = %q, want %q", b, got, want)
		}
	}
}

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]uint32{"0": 0, "0s": 0, "30s": 30000, "1m30s": 90000, "250ms": 250, " 2s ": 2000} {
		got, err := ParseTimeout(in)
		if err != nil || got != want {
			t.Errorf("ParseTimeout(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{"": "not a duration", "30": "not a duration", "soon": "not a duration",
		"-1s": "negative", "10us": "below 1ms", "2000h": "above the limit"} {
		if _, err := ParseTimeout(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseTimeout(%q) = %v, want %q", in, err, msg)
		}
	}
}

func valid() *statev1.ComponentSpec {
	return &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 2, MemoryBytes: 128 << 20, TimeoutMs: 30000, Concurrency: 50,
		Env: map[string]string{"GREETING": "hi"}}
}

// TestCheck: every rule of a spec, with the key it reports.
func TestCheck(t *testing.T) {
	wasm, ctr := statev1.Runtime_RUNTIME_WASM, statev1.Runtime_RUNTIME_CONTAINER
	if ps := Check(wasm, valid()); len(ps) != 0 {
		t.Fatalf("valid spec: %v", ps)
	}
	zero := valid()
	zero.MemoryBytes, zero.TimeoutMs, zero.Concurrency, zero.ScaleMin = 0, 0, 0, 0
	for _, rt := range []statev1.Runtime{wasm, ctr} {
		if ps := Check(rt, zero); len(ps) != 0 {
			t.Fatalf("zeros (node defaults, scale to zero) for %s: %v", rt, ps)
		}
	}
	edges := valid()
	edges.MemoryBytes, edges.TimeoutMs, edges.Concurrency, edges.ScaleMax = MinMemory, uint32(MaxTimeout/time.Millisecond), MaxConcurrency, MaxScale
	if ps := Check(wasm, edges); len(ps) != 0 {
		t.Fatalf("bounds themselves: %v", ps)
	}
	for _, tc := range []struct {
		name string
		rt   statev1.Runtime
		edit func(*statev1.ComponentSpec)
		key  string
		msg  string
	}{
		{"memory below", wasm, func(s *statev1.ComponentSpec) { s.MemoryBytes = MinMemory - 1 }, "limits.memory", "outside 16Mi..64Gi"},
		{"memory 8Mi", wasm, func(s *statev1.ComponentSpec) { s.MemoryBytes = 8 << 20 }, "limits.memory", `"8Mi" is outside`},
		{"memory above", wasm, func(s *statev1.ComponentSpec) { s.MemoryBytes = MaxMemory + 1 }, "limits.memory", "outside"},
		{"timeout above", wasm, func(s *statev1.ComponentSpec) { s.TimeoutMs = 16 * 60 * 1000 }, "limits.timeout", "above the limit of 15m"},
		{"timeout max uint32", wasm, func(s *statev1.ComponentSpec) { s.TimeoutMs = math.MaxUint32 }, "limits.timeout", "above"},
		{"concurrency above", wasm, func(s *statev1.ComponentSpec) { s.Concurrency = MaxConcurrency + 1 }, "limits.concurrency", "above the limit of 10000"},
		{"max 0", wasm, func(s *statev1.ComponentSpec) { s.ScaleMin, s.ScaleMax = 0, 0 }, "scale.max", "below 1"},
		{"max above", wasm, func(s *statev1.ComponentSpec) { s.ScaleMax = MaxScale + 1 }, "scale.max", "above the limit of 1000"},
		{"min above max", wasm, func(s *statev1.ComponentSpec) { s.ScaleMin = 3 }, "scale.min", "greater than scale.max"},
		{"exclusive", wasm, func(s *statev1.ComponentSpec) { s.Exclusive = true }, "scale.exclusive", "scale.max = 1"},
		{"env name", wasm, func(s *statev1.ComponentSpec) { s.Env = map[string]string{"1X": ""} }, "env.1X", "not a variable name"},
		{"env V9_", wasm, func(s *statev1.ComponentSpec) { s.Env = map[string]string{"V9_NODE": ""} }, "env.V9_NODE", "reserved"},
		{"env v9_ lower", wasm, func(s *statev1.ComponentSpec) { s.Env = map[string]string{"v9_node": ""} }, "env.v9_node", "reserved"},
		{"env V9_ mixed", wasm, func(s *statev1.ComponentSpec) { s.Env = map[string]string{"v9_Node": ""} }, "env.v9_Node", "reserved"},
		{"env NUL", wasm, func(s *statev1.ComponentSpec) { s.Env = map[string]string{"A": "a\x00b"} }, "env.A", "NUL"},
		{"wasm build", wasm, func(s *statev1.ComponentSpec) { s.Wasm = &statev1.WasmSpec{Build: "rust"} }, "wasm.build", "not supported"},
	} {
		s := valid()
		tc.edit(s)
		ps := Check(tc.rt, s)
		if len(ps) != 1 || ps[0].Key != tc.key || !strings.Contains(ps[0].Msg, tc.msg) {
			t.Errorf("%s: %+v, want one problem %s %q", tc.name, ps, tc.key, tc.msg)
		}
	}
	if ps := Check(wasm, nil); len(ps) != 1 {
		t.Errorf("nil spec: %v", ps)
	}
	// V9 alone, or V9 without the underscore, is an ordinary name.
	for _, k := range []string{"V9", "V9X", "XV9_"} {
		if Reserved(k) {
			t.Errorf("%s reserved", k)
		}
	}
}

func TestDefaultScale(t *testing.T) {
	for _, tc := range []struct {
		minSet, maxSet bool
		lo, hi         uint32
		wlo, whi       uint32
	}{
		{false, false, 0, 0, 1, 1},
		{true, false, 0, 0, 0, 1},
		{true, false, 3, 0, 3, 3},
		{false, true, 0, 4, 1, 4},
		{false, true, 0, 0, 0, 0},
		{true, true, 2, 5, 2, 5},
	} {
		lo, hi := DefaultScale(tc.minSet, tc.maxSet, tc.lo, tc.hi)
		if lo != tc.wlo || hi != tc.whi {
			t.Errorf("DefaultScale(%v) = %d,%d; want %d,%d", tc, lo, hi, tc.wlo, tc.whi)
		}
	}
	if s := Defaulted(nil); s.ScaleMin != 1 || s.ScaleMax != 1 {
		t.Errorf("Defaulted(nil) = %v", s)
	}
	if s := Defaulted(&statev1.ComponentSpec{ScaleMax: 3}); s.ScaleMin != 0 || s.ScaleMax != 3 {
		t.Errorf("Defaulted keeps a given scale: %v", s)
	}
	for _, tc := range [][3]uint32{{0, 2, 1}, {0, 0, 0}, {3, 5, 3}, {1, 1, 1}} {
		if got := InitialReplicas(&statev1.ComponentSpec{ScaleMin: tc[0], ScaleMax: tc[1]}); got != tc[2] {
			t.Errorf("InitialReplicas(%d..%d) = %d, want %d", tc[0], tc[1], got, tc[2])
		}
	}
}

// FuzzParse: the size and duration parsers never panic, and what they accept prints back to
// the same value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"128Mi", "0", "1Ti", "30s", "1m30s", "-1s", "99999999999999Ti", " 5Ki", "10%", "100%", "101%", "0 %"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if b, err := ParseMemory(s); err == nil {
			if back, err := ParseMemory(FormatMemory(b)); err != nil || back != b {
				t.Fatalf("%q: %d prints as %q, parsed back %d %v", s, b, FormatMemory(b), back, err)
			}
		}
		if ms, err := ParseTimeout(s); err == nil {
			d := time.Duration(ms) * time.Millisecond
			if back, err := ParseTimeout(d.String()); err != nil || back != ms {
				t.Fatalf("%q: %dms prints as %q, parsed back %d %v", s, ms, d, back, err)
			}
		}
		if p, err := ParsePercent(s); err == nil {
			if back, err := ParsePercent(fmt.Sprintf("%d%%", p)); err != nil || back != p || p > 100 {
				t.Fatalf("%q: %d%% parsed back %d %v", s, p, back, err)
			}
		}
	})
}

func TestCanaryDefaults(t *testing.T) {
	if p, w := Canary(nil); p != DefaultCanaryPercent || w != DefaultCanaryWindow {
		t.Fatalf("unset: %d %s", p, w)
	}
	if p, w := Canary(&statev1.ComponentSpec{Rollout: &statev1.RolloutSpec{CanaryPercent: 0, WindowMs: 2000}}); p != 0 || w != 2*time.Second {
		t.Fatalf("0%%, 2s: %d %s", p, w)
	}
	for _, bad := range []string{"", "x", "-1%", "101%", "10.5%"} {
		if _, err := ParsePercent(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if HealthPath(nil) != "/" {
		t.Fatal("default health path")
	}
}
