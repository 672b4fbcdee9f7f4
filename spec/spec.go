// Package spec is the one place a component spec's rules live: its bounds, its defaults, the
// reserved environment prefix, and the parsing of memory sizes and timeouts. The manifest
// (deploy), the CLI flags (cmd/v9), the API (rpc/server), GitHub linking (ghub) and the
// state machine's Apply (fsm) all call it, so a spec one of them accepts the others accept.
//
// It is pure: no I/O, clock or randomness, and it imports nothing of v9's but the
// generated state types, so fsm may use it.
//
// Zero means "the node's default" for memory, timeout, concurrency and body: the executor fills
// it in (wasm: 128Mi and 30s). The V9_ prefix of environment names is reserved whatever
// its case ("v9_x" is refused too), because environments are case-insensitive on some
// platforms and a component must never shadow what v9 sets.
package spec

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Bounds every spec is checked against.
const (
	MinMemory      = 16 << 20 // 16Mi
	MaxMemory      = 64 << 30 // 64Gi
	MaxTimeout     = 15 * time.Minute
	MaxScale       = 1000
	MaxConcurrency = 10000
	// MaxReuse bounds wasm.reuse, the requests one warm instance serves.
	MaxReuse = 1_000_000
	MaxBody  = 1 << 30 // 1Gi: a body is held in memory whole by a wasm instance
	// ReservedEnvPrefix starts the names v9 sets in a component's environment; compared
	// without regard to case.
	ReservedEnvPrefix = "V9_"
)

// WasmABIHTTP is wasm.abi for warm instances: a WASI reactor that exports a request handler
// (the v9 guest package), initialized once and reused for wasm.reuse requests (0: the node's
// default; 1: a fresh instance per request, as isolated as WAGI).
const WasmABIHTTP = "http"

// Defaults a manifest gets for the keys it leaves out.
const (
	DefaultMemory      = 128 << 20
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 50
	DefaultBody        = 10 << 20 // 10Mi
	// A new version's canary: its share of the requests and how long it lasts.
	DefaultCanaryPercent = 10
	DefaultCanaryWindow  = 30 * time.Second
	MaxCanaryWindow      = time.Hour
)

// Problem is one rule a spec breaks. Key names the manifest key ("scale.max",
// "limits.memory", "env.NAME"), which the CLI and the API messages use too.
type Problem struct {
	Key string
	Msg string
}

// Error joins problems into one error message ("" for none).
func Error(ps []Problem) string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Msg
	}
	return strings.Join(msgs, "; ")
}

// Check lists what is wrong with a spec for the given runtime, in the order of the
// manifest's keys; none means it is valid.
func Check(rt statev1.Runtime, s *statev1.ComponentSpec) []Problem {
	if s == nil {
		return []Problem{{Key: "spec", Msg: "spec is missing"}}
	}
	var ps []Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if w := s.Wasm; w != nil && w.Build != "" && w.Build != "go" {
		add("wasm.build", `wasm.build %q is not supported (only "go")`, w.Build)
	}
	if w := s.Wasm; w != nil {
		switch {
		case w.Abi != "" && w.Abi != WasmABIHTTP:
			add("wasm.abi", `wasm.abi %q is not supported ("" for WAGI, or %q for warm instances)`, w.Abi, WasmABIHTTP)
		case w.Reuse != 0 && w.Abi != WasmABIHTTP:
			add("wasm.reuse", `wasm.reuse is for warm instances: it needs wasm.abi = %q`, WasmABIHTTP)
		case w.Reuse > MaxReuse:
			add("wasm.reuse", "wasm.reuse %d is above the limit of %d", w.Reuse, MaxReuse)
		}
	}
	switch {
	case s.ScaleMax < 1:
		add("scale.max", "scale.max %d is below 1", s.ScaleMax)
	case s.ScaleMax > MaxScale:
		add("scale.max", "scale.max %d is above the limit of %d", s.ScaleMax, MaxScale)
	case s.ScaleMin > s.ScaleMax:
		add("scale.min", "scale.min %d is greater than scale.max %d", s.ScaleMin, s.ScaleMax)
	case s.Exclusive && s.ScaleMax > 1:
		add("scale.exclusive", "scale.exclusive needs scale.max = 1 (it is %d)", s.ScaleMax)
	}
	if m := s.MemoryBytes; m != 0 && (m < MinMemory || m > MaxMemory) {
		add("limits.memory", "limits.memory %q is outside 16Mi..64Gi", FormatMemory(m))
	}
	if d := time.Duration(s.TimeoutMs) * time.Millisecond; d > MaxTimeout {
		add("limits.timeout", "limits.timeout %q is above the limit of 15m", d)
	}
	if b := s.BodyBytes; b > MaxBody {
		add("limits.body", "limits.body %q is above the limit of 1Gi", FormatMemory(b))
	}
	if s.Concurrency > MaxConcurrency {
		add("limits.concurrency", "limits.concurrency %d is above the limit of %d", s.Concurrency, MaxConcurrency)
	}
	if p := s.HealthPath; p != "" && (p[0] != '/' || strings.ContainsAny(p, " \t\r\n\x00#")) {
		add("health.path", "health.path %q must be a path starting with / (no spaces or #)", p)
	}
	if r := s.Rollout; r != nil {
		if r.CanaryPercent > 100 {
			add("rollout.canary", "rollout.canary %d%% is above 100%%", r.CanaryPercent)
		}
		if w := time.Duration(r.WindowMs) * time.Millisecond; w > MaxCanaryWindow {
			add("rollout.window", "rollout.window %q is above the limit of 1h", w)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) { // sorted: every replica reports the same key
		if p := CheckEnv(k, s.Env[k]); p != "" {
			add("env."+k, "%s", p)
		}
	}
	return ps
}

// Canary is a spec's canary: the share of requests (percent, 0 for none) a new version gets
// after its readiness checks pass, and for how long, with the defaults for an unset rollout.
func Canary(s *statev1.ComponentSpec) (percent uint32, window time.Duration) {
	r := s.GetRollout()
	if r == nil {
		return DefaultCanaryPercent, DefaultCanaryWindow
	}
	window = time.Duration(r.WindowMs) * time.Millisecond
	if window <= 0 {
		window = DefaultCanaryWindow
	}
	return r.CanaryPercent, window
}

// ParsePercent reads a share of traffic: "10%" or "10", a whole number from 0 to 100.
func ParsePercent(s string) (uint32, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "%")
	n, err := strconv.ParseUint(strings.TrimSpace(t), 10, 32)
	if err != nil || n > 100 {
		return 0, fmt.Errorf("%q is not a percentage: want a whole number from 0%% to 100%%, like \"10%%\"", s)
	}
	return uint32(n), nil
}

// HealthPath is the path of an instance's readiness request.
func HealthPath(s *statev1.ComponentSpec) string {
	if p := s.GetHealthPath(); p != "" {
		return p
	}
	return "/"
}

// CheckEnv checks one environment variable; "" means it is fine.
func CheckEnv(name, value string) string {
	switch {
	case !isEnvName(name):
		return fmt.Sprintf("env key %q is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", name)
	case Reserved(name):
		return fmt.Sprintf("env key %q is reserved: names starting with %s belong to v9", name, ReservedEnvPrefix)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Sprintf("env.%s contains a NUL byte", name)
	}
	return ""
}

// Reserved reports whether an environment name starts with ReservedEnvPrefix, in any case.
func Reserved(name string) bool {
	return len(name) >= len(ReservedEnvPrefix) && strings.EqualFold(name[:len(ReservedEnvPrefix)], ReservedEnvPrefix)
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// DefaultScale fills the scale bounds a caller did not give: one replica when neither is
// given; scale.min 1 (or 0 when scale.max is 0) when only scale.max is; scale.max
// max(1, scale.min) when only scale.min is.
func DefaultScale(minSet, maxSet bool, lo, hi uint32) (uint32, uint32) {
	switch {
	case !minSet && !maxSet:
		return 1, 1
	case !minSet:
		return min(1, hi), hi
	case !maxSet:
		return lo, max(1, lo)
	}
	return lo, hi
}

// Defaulted returns s (a new spec when nil) with the API's defaults: a spec whose scale.min
// and scale.max are both 0 (left out: proto3 cannot tell) runs one replica.
func Defaulted(s *statev1.ComponentSpec) *statev1.ComponentSpec {
	if s == nil {
		s = &statev1.ComponentSpec{}
	}
	if s.ScaleMin == 0 && s.ScaleMax == 0 {
		s.ScaleMin, s.ScaleMax = DefaultScale(false, false, 0, 0)
	}
	return s
}

// InitialReplicas is how many replicas a new component starts with: scale.min, but at least
// one when scale.max allows it, so that a new component serves from a warm instance at once
// (autoscaling takes a component with scale.min 0 down to zero when idle).
func InitialReplicas(s *statev1.ComponentSpec) uint32 {
	return min(max(s.GetScaleMin(), 1), s.GetScaleMax())
}

var memoryUnits = []struct {
	suffix string
	shift  uint
}{{"Ki", 10}, {"Mi", 20}, {"Gi", 30}, {"Ti", 40}}

// ParseMemory reads a size: a whole number of bytes, or a whole number followed by Ki, Mi,
// Gi or Ti (powers of 1024). Surrounding spaces are ignored. "0" is the node's default.
func ParseMemory(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	num, shift := t, uint(0)
	for _, u := range memoryUnits {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	if num == "" || strings.Trim(num, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a size: want bytes or a whole number with Ki, Mi, Gi or Ti, like \"128Mi\"", s)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxUint64>>shift {
		return 0, fmt.Errorf("%q is not a size: it is out of range", s)
	}
	return n << shift, nil
}

// FormatMemory prints bytes in the largest binary unit that divides them ("128Mi").
func FormatMemory(b uint64) string {
	if b == 0 {
		return "0"
	}
	for i := len(memoryUnits) - 1; i >= 0; i-- {
		if u := memoryUnits[i]; b%(1<<u.shift) == 0 {
			return strconv.FormatUint(b>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatUint(b, 10)
}

// ParseTimeout reads a Go duration ("500ms", "30s", "1m30s") and returns it in whole
// milliseconds. "0" or "0s" is the node's default; the bound is Check's.
func ParseTimeout(s string) (uint32, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a duration like \"30s\" or \"1m30s\"", s)
	case d < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case d > 0 && d < time.Millisecond:
		return 0, fmt.Errorf("%q is below 1ms", s)
	case d/time.Millisecond > math.MaxUint32:
		return 0, fmt.Errorf("%q is above the limit of 15m", s)
	}
	return uint32(d / time.Millisecond), nil
}
