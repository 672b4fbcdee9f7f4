// Package deploy turns a directory into something a v9 cluster can run: it reads and
// validates the component manifest (v9.toml), bundles a directory into a deterministic
// tar.gz, extracts bundles and tarballs safely, and builds a manifest's module (`build =
// "go"`). Fetching from GitHub is package ghub's.
//
// It imports nothing of v9's except the generated state types. Every manifest and archive
// is hostile input: parsing never panics, and extraction never writes outside the
// destination it is given.
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/spec"
)

// ManifestFile is the manifest's name at the root of a repository or bundle.
const ManifestFile = "v9.toml"

// MaxManifestSize is the largest manifest ParseManifest accepts.
const MaxManifestSize = 1 << 20

// Runtimes a manifest may name.
const (
	RuntimeWasm      = "wasm"
	RuntimeContainer = "container"
)

// Defaults applied to keys the manifest leaves out; the bounds are package spec's.
var (
	DefaultMemory  = spec.FormatMemory(spec.DefaultMemory)
	DefaultBody    = spec.FormatMemory(spec.DefaultBody)
	DefaultTimeout = spec.DefaultTimeout.String()
)

// DefaultConcurrency is limits.concurrency when the manifest leaves it out.
const DefaultConcurrency = spec.DefaultConcurrency

// Manifest errors. ParseManifest, CheckFiles and LoadManifest return a *ManifestError,
// which matches ErrBadManifest with errors.Is; LoadManifest returns an error matching
// ErrNoManifest when the directory has no v9.toml.
var (
	ErrBadManifest = errors.New("bad manifest")
	ErrNoManifest  = errors.New("no " + ManifestFile)
)

// Manifest is a parsed and validated v9.toml. ParseManifest fills in the defaults, so every
// field holds the value in force.
type Manifest struct {
	Name      string            `toml:"name"`
	Runtime   string            `toml:"runtime"` // RuntimeWasm or RuntimeContainer
	Wasm      ManifestWasm      `toml:"wasm"`
	Container ManifestContainer `toml:"container"`
	Scale     ManifestScale     `toml:"scale"`
	Limits    ManifestLimits    `toml:"limits"`
	Env       map[string]string `toml:"env,omitempty"`
	Health    ManifestHealth    `toml:"health"`
	Rollout   ManifestRollout   `toml:"rollout"`
}

// ManifestHealth is the [health] table: the readiness request a new instance must answer
// with a non-5xx before it takes traffic.
type ManifestHealth struct {
	Path string `toml:"path,omitempty"` // default "/"
}

// ManifestRollout is the [rollout] table: a new version's canary.
type ManifestRollout struct {
	Canary string `toml:"canary"` // share of requests, "10%"; "0%" disables the canary
	Window string `toml:"window"` // how long the canary lasts, "30s"
}

// ManifestWasm is the [wasm] table: a prebuilt module in the repository, or a build.
type ManifestWasm struct {
	Module string `toml:"module,omitempty"` // slash path relative to the repository root
	Build  string `toml:"build,omitempty"`  // "" or "go"
	ABI    string `toml:"abi,omitempty"`    // "" (WAGI) or "http" (warm; spec.WasmABIHTTP)
	Reuse  int    `toml:"reuse,omitempty"`  // with abi "http": requests per warm instance
}

// ManifestContainer is the [container] table.
type ManifestContainer struct {
	Image   string   `toml:"image,omitempty"`
	Command []string `toml:"command,omitempty"`
	// Archive names an OCI image archive in the repository (slash path relative to its root)
	// that is imported instead of pulling Image; Image then names the image inside it.
	Archive string `toml:"archive,omitempty"`
}

// ManifestScale is the [scale] table.
type ManifestScale struct {
	Min       int  `toml:"min"` // 0: scale to zero when idle
	Max       int  `toml:"max"`
	Exclusive bool `toml:"exclusive"` // never two instances at once; needs Max == 1
}

// ManifestLimits is the [limits] table.
type ManifestLimits struct {
	Memory      string `toml:"memory"`      // bytes, or a number with Ki, Mi, Gi or Ti (spec.ParseMemory)
	Body        string `toml:"body"`        // the largest request body, a size like Memory
	Timeout     string `toml:"timeout"`     // a Go duration: "30s", "1m30s"
	Concurrency int    `toml:"concurrency"` // in-flight requests per instance; 0: the node's default
}

// Problem is one thing wrong with a manifest. Msg names the key; Line is 1-based, 0 when
// unknown.
type Problem struct {
	Key  string
	Line int
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s (line %d)", p.Msg, p.Line)
	}
	return p.Msg
}

// ManifestError lists everything wrong with a manifest, in document order where it can.
type ManifestError struct {
	Problems []Problem
}

func (e *ManifestError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return ManifestFile + ": " + strings.Join(parts, "; ")
}

// Unwrap makes every ManifestError match ErrBadManifest.
func (e *ManifestError) Unwrap() error { return ErrBadManifest }

func manifestError(ps ...Problem) error {
	return &ManifestError{Problems: ps}
}

// rawManifest is what the TOML decoder fills: pointers where a missing key and a zero value
// mean different things.
type rawManifest struct {
	Name      string            `toml:"name"`
	Runtime   string            `toml:"runtime"`
	Wasm      ManifestWasm      `toml:"wasm"`
	Container ManifestContainer `toml:"container"`
	Scale     struct {
		Min       *int64 `toml:"min"`
		Max       *int64 `toml:"max"`
		Exclusive bool   `toml:"exclusive"`
	} `toml:"scale"`
	Limits struct {
		Memory      any     `toml:"memory"` // a string, or an integer number of bytes
		Body        any     `toml:"body"`   // the same
		Timeout     *string `toml:"timeout"`
		Concurrency *int64  `toml:"concurrency"`
	} `toml:"limits"`
	Env     map[string]string `toml:"env"`
	Health  ManifestHealth    `toml:"health"`
	Rollout struct {
		Canary *string `toml:"canary"`
		Window *string `toml:"window"`
	} `toml:"rollout"`
}

// keyTypes says what each known key holds, for type errors.
var keyTypes = map[string]string{
	"name":               "a string",
	"runtime":            `a string ("wasm" or "container")`,
	"wasm":               "a table",
	"wasm.module":        "a string",
	"wasm.build":         "a string",
	"wasm.abi":           `a string ("" or "http")`,
	"wasm.reuse":         "an integer",
	"container":          "a table",
	"container.image":    "a string",
	"container.command":  "an array of strings",
	"container.archive":  "a string",
	"scale":              "a table",
	"scale.min":          "an integer",
	"scale.max":          "an integer",
	"scale.exclusive":    "a boolean",
	"limits":             "a table",
	"limits.memory":      `a size like "128Mi" or a number of bytes`,
	"limits.body":        `a size like "10Mi" or a number of bytes`,
	"limits.timeout":     `a duration string like "30s"`,
	"limits.concurrency": "an integer",
	"env":                "a table of strings",
	"health":             "a table",
	"health.path":        "a string",
	"rollout":            "a table",
	"rollout.canary":     `a percentage string like "10%"`,
	"rollout.window":     `a duration string like "30s"`,
}

// ParseManifest decodes and validates a v9.toml and fills in the defaults. Its errors are
// a *ManifestError naming each bad key and, where it can, its line.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, manifestError(Problem{Msg: fmt.Sprintf("the file is larger than %d bytes", MaxManifestSize)})
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte order mark some editors write
	var raw rawManifest
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	var problems []Problem
	if err := dec.Decode(&raw); err != nil {
		var strict *toml.StrictMissingError
		var derr *toml.DecodeError
		switch {
		case errors.As(err, &strict):
			// Everything else was decoded: report the unknown keys and keep validating.
			for _, e := range strict.Errors {
				line, _ := e.Position()
				key := strings.Join(e.Key(), ".")
				problems = append(problems, Problem{Key: key, Line: line, Msg: fmt.Sprintf("unknown key %q", key)})
			}
		case errors.As(err, &derr):
			return nil, manifestError(decodeProblem(derr))
		default:
			return nil, manifestError(Problem{Msg: "invalid TOML: " + strings.TrimPrefix(err.Error(), "toml: ")})
		}
	}
	m, more := resolve(&raw)
	problems = append(problems, more...)
	problems = append(problems, m.problems()...)
	if len(problems) > 0 {
		lines := keyLines(data)
		for i := range problems {
			if problems[i].Line == 0 {
				problems[i].Line = lookupLine(lines, problems[i].Key)
			}
		}
		return nil, manifestError(problems...)
	}
	return m, nil
}

// decodeProblem turns a TOML syntax or type error into a Problem.
func decodeProblem(derr *toml.DecodeError) Problem {
	line, _ := derr.Position()
	key := strings.Join(derr.Key(), ".")
	msg := strings.TrimPrefix(derr.Error(), "toml: ")
	if key != "" && strings.HasPrefix(msg, "cannot decode TOML") {
		want, ok := keyTypes[key]
		if !ok && strings.HasPrefix(key, "env.") {
			want, ok = "a string", true
		}
		if ok {
			return Problem{Key: key, Line: line, Msg: fmt.Sprintf("%s must be %s", key, want)}
		}
		return Problem{Key: key, Line: line, Msg: fmt.Sprintf("%s has the wrong type: %s", key, msg)}
	}
	if key != "" {
		return Problem{Key: key, Line: line, Msg: fmt.Sprintf("invalid TOML at %s: %s", key, msg)}
	}
	return Problem{Line: line, Msg: "invalid TOML: " + msg}
}

// resolve applies the defaults to what the decoder read.
func resolve(raw *rawManifest) (*Manifest, []Problem) {
	var problems []Problem
	m := &Manifest{
		Name:      raw.Name,
		Runtime:   raw.Runtime,
		Wasm:      raw.Wasm,
		Container: raw.Container,
		Scale:     ManifestScale{Exclusive: raw.Scale.Exclusive},
		Limits:    ManifestLimits{Memory: DefaultMemory, Body: DefaultBody, Timeout: DefaultTimeout, Concurrency: DefaultConcurrency},
		Env:       raw.Env,
		Health:    raw.Health,
		Rollout:   ManifestRollout{Canary: fmt.Sprintf("%d%%", spec.DefaultCanaryPercent), Window: spec.DefaultCanaryWindow.String()},
	}
	if raw.Rollout.Canary != nil {
		m.Rollout.Canary = *raw.Rollout.Canary
	}
	if raw.Rollout.Window != nil {
		m.Rollout.Window = *raw.Rollout.Window
	}
	var lo, hi int
	if raw.Scale.Min != nil {
		lo = clampInt(*raw.Scale.Min)
	}
	if raw.Scale.Max != nil {
		hi = clampInt(*raw.Scale.Max)
	}
	dlo, dhi := spec.DefaultScale(raw.Scale.Min != nil, raw.Scale.Max != nil, toUint32(lo), toUint32(hi))
	m.Scale.Min, m.Scale.Max = int(dlo), int(dhi)
	if raw.Scale.Min != nil {
		m.Scale.Min = lo // a negative one stays negative, and is reported
	}
	if raw.Scale.Max != nil {
		m.Scale.Max = hi
	}
	for _, sz := range []struct {
		key string
		raw any
		dst *string
	}{{"limits.memory", raw.Limits.Memory, &m.Limits.Memory}, {"limits.body", raw.Limits.Body, &m.Limits.Body}} {
		switch v := sz.raw.(type) {
		case nil:
		case string:
			*sz.dst = v
		case int64:
			*sz.dst = strconv.FormatInt(v, 10)
		default:
			problems = append(problems, Problem{Key: sz.key, Msg: sz.key + " must be " + keyTypes[sz.key]})
		}
	}
	if raw.Limits.Timeout != nil {
		m.Limits.Timeout = *raw.Limits.Timeout
	}
	if raw.Limits.Concurrency != nil {
		m.Limits.Concurrency = clampInt(*raw.Limits.Concurrency)
	}
	return m, problems
}

// clampInt keeps huge TOML integers huge (and so out of bounds) on 32-bit platforms.
func clampInt(v int64) int {
	return int(min(max(v, math.MinInt32), math.MaxInt32))
}

// Validate checks a Manifest, for example one built by hand or changed after parsing.
// ParseManifest only returns manifests that pass it.
func (m *Manifest) Validate() error {
	if ps := m.problems(); len(ps) > 0 {
		return manifestError(ps...)
	}
	return nil
}

// problems lists what is wrong with m, in the order the keys appear in the example manifest.
func (m *Manifest) problems() []Problem {
	var ps []Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}

	switch {
	case m.Name == "":
		add("name", "name is missing")
	case !isDNSLabel(m.Name):
		add("name", "name %q is not a DNS label (1 to 63 characters a-z, 0-9 and '-', not starting or ending with '-')", m.Name)
	}

	switch m.Runtime {
	case RuntimeWasm:
		w := m.Wasm
		switch {
		case w.Module == "" && w.Build == "":
			add("wasm", `runtime "wasm" needs wasm.module (a prebuilt module in the repository) or wasm.build = "go"`)
		case w.Module != "" && w.Build != "":
			add("wasm.build", "wasm.module and wasm.build are exclusive: name a prebuilt module or build one")
		case w.Build != "" && w.Build != "go":
			add("wasm.build", `wasm.build %q is not supported (only "go")`, w.Build)
		case w.Module != "" && !isLocalPath(w.Module):
			add("wasm.module", "wasm.module %q must be a relative path inside the repository", w.Module)
		}
		if w.Reuse < 0 || int64(w.Reuse) > math.MaxUint32 {
			add("wasm.reuse", "wasm.reuse %d is out of range", w.Reuse)
		}
	case RuntimeContainer:
		c := m.Container
		switch {
		case c.Image == "":
			add("container.image", `runtime "container" needs container.image`)
		case !isImageRef(c.Image):
			add("container.image", "container.image %q is not an image reference", c.Image)
		}
		if c.Archive != "" && !isLocalPath(c.Archive) {
			add("container.archive", "container.archive %q must be a relative path inside the repository", c.Archive)
		}
		for i, arg := range c.Command {
			if strings.IndexByte(arg, 0) >= 0 {
				add("container.command", "container.command[%d] contains a NUL byte", i)
			}
		}
	case "":
		add("runtime", `runtime is missing (want "wasm" or "container")`)
	default:
		add("runtime", `runtime %q is unknown (want "wasm" or "container")`, m.Runtime)
	}

	// What only a manifest can get wrong: numbers out of range before they become the
	// spec's, and text that is not a size or a duration. The rest is package spec's.
	if m.Scale.Min < 0 {
		add("scale.min", "scale.min %d is negative", m.Scale.Min)
	}
	if m.Scale.Max < 0 {
		add("scale.max", "scale.max %d is below 1", m.Scale.Max)
	}
	l := m.Limits
	if _, err := spec.ParseMemory(l.Memory); err != nil {
		add("limits.memory", "limits.memory %v", err)
	}
	if _, err := spec.ParseMemory(l.Body); err != nil && l.Body != "" { // "": the default
		add("limits.body", "limits.body %v", err)
	}
	if _, err := spec.ParseTimeout(l.Timeout); err != nil {
		add("limits.timeout", "limits.timeout %v", err)
	}
	if l.Concurrency < 0 {
		add("limits.concurrency", "limits.concurrency %d is negative", l.Concurrency)
	}
	if _, err := spec.ParsePercent(m.Rollout.Canary); err != nil {
		add("rollout.canary", "rollout.canary %v", err)
	}
	if _, err := spec.ParseTimeout(m.Rollout.Window); err != nil {
		add("rollout.window", "rollout.window %v", err)
	}
	rt := m.RuntimeEnum()
	if rt == statev1.Runtime_RUNTIME_UNSPECIFIED {
		rt = statev1.Runtime_RUNTIME_WASM // reported above; check the rest as wasm
	}
	for _, p := range spec.Check(rt, m.Spec()) {
		if !slices.ContainsFunc(ps, func(q Problem) bool { return q.Key == p.Key }) {
			ps = append(ps, Problem{Key: p.Key, Msg: p.Msg})
		}
	}
	slices.SortStableFunc(ps, func(a, b Problem) int { return keyRank(a.Key) - keyRank(b.Key) })
	return ps
}

// keyRank orders problems as the keys appear in the example manifest.
func keyRank(key string) int {
	for i, prefix := range []string{"name", "runtime", "wasm", "container", "scale", "limits", "env", "health", "rollout"} {
		if key == prefix || strings.HasPrefix(key, prefix+".") {
			return i
		}
	}
	return 100
}

// RuntimeEnum is the manifest's runtime as the state's enum.
func (m *Manifest) RuntimeEnum() statev1.Runtime {
	switch m.Runtime {
	case RuntimeWasm:
		return statev1.Runtime_RUNTIME_WASM
	case RuntimeContainer:
		return statev1.Runtime_RUNTIME_CONTAINER
	}
	return statev1.Runtime_RUNTIME_UNSPECIFIED
}

// Spec is the manifest as the state's ComponentSpec. Only the table of the manifest's
// runtime is carried over. Container.Archive has no field there: callers read it from the
// Manifest. Values out of range (possible only in a manifest that fails Validate) become 0.
func (m *Manifest) Spec() *statev1.ComponentSpec {
	s := &statev1.ComponentSpec{
		ScaleMin:    toUint32(m.Scale.Min),
		ScaleMax:    toUint32(m.Scale.Max),
		Exclusive:   m.Scale.Exclusive,
		Concurrency: toUint32(m.Limits.Concurrency),
	}
	if len(m.Env) > 0 {
		s.Env = maps.Clone(m.Env)
	}
	if n, err := spec.ParseMemory(m.Limits.Memory); err == nil {
		s.MemoryBytes = n
	}
	if n, err := spec.ParseMemory(m.Limits.Body); err == nil {
		s.BodyBytes = n
	}
	if ms, err := spec.ParseTimeout(m.Limits.Timeout); err == nil {
		s.TimeoutMs = ms
	}
	s.HealthPath = m.Health.Path
	s.Rollout = &statev1.RolloutSpec{CanaryPercent: spec.DefaultCanaryPercent, WindowMs: uint32(spec.DefaultCanaryWindow / time.Millisecond)}
	if p, err := spec.ParsePercent(m.Rollout.Canary); err == nil {
		s.Rollout.CanaryPercent = p
	}
	if ms, err := spec.ParseTimeout(m.Rollout.Window); err == nil && ms > 0 {
		s.Rollout.WindowMs = ms
	}
	switch m.Runtime {
	case RuntimeWasm:
		s.Wasm = &statev1.WasmSpec{Module: m.Wasm.Module, Build: m.Wasm.Build, Abi: m.Wasm.ABI, Reuse: toUint32(m.Wasm.Reuse)}
	case RuntimeContainer:
		s.Container = &statev1.ContainerSpec{Image: m.Container.Image, Command: slices.Clone(m.Container.Command)}
	}
	return s
}

func toUint32(v int) uint32 {
	if v < 0 || int64(v) > math.MaxUint32 {
		return 0
	}
	return uint32(v)
}

// CheckFiles checks the files m names against the repository in dir: the wasm module or
// the container's image archive must be a regular file inside dir, reached without leaving
// it (symbolic links included).
func CheckFiles(m *Manifest, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("check files: %w", err)
	}
	defer root.Close()
	var ps []Problem
	switch m.Runtime {
	case RuntimeWasm:
		if m.Wasm.Module != "" {
			ps = append(ps, checkFile(root, "wasm.module", m.Wasm.Module)...)
		}
	case RuntimeContainer:
		if m.Container.Archive != "" {
			ps = append(ps, checkFile(root, "container.archive", m.Container.Archive)...)
		}
	}
	if len(ps) > 0 {
		return manifestError(ps...)
	}
	return nil
}

func checkFile(root *os.Root, key, name string) []Problem {
	problem := func(format string, args ...any) []Problem {
		return []Problem{{Key: key, Msg: fmt.Sprintf("%s %q ", key, name) + fmt.Sprintf(format, args...)}}
	}
	if !isLocalPath(name) {
		return problem("must be a relative path inside the repository")
	}
	fi, err := root.Stat(filepath.FromSlash(name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return problem("not found in the repository")
	case err != nil:
		return problem("cannot be read inside the repository: %v", errors.Unwrap(err))
	case fi.IsDir():
		return problem("is a directory, not a file")
	case !fi.Mode().IsRegular():
		return problem("is not a regular file")
	}
	return nil
}

// LoadManifest reads, parses and checks dir's v9.toml against the files in dir.
func LoadManifest(dir string) (*Manifest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	defer root.Close()
	f, err := root.Open(ManifestFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s not found at the root of the repository", ErrNoManifest, ManifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ManifestFile, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ManifestFile, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, err
	}
	if err := CheckFiles(m, dir); err != nil {
		return nil, err
	}
	return m, nil
}

func isDNSLabel(s string) bool {
	if len(s) < 1 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isLocalPath reports whether a manifest path (slash-separated) stays inside the repository.
func isLocalPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && strings.IndexByte(p, 0) < 0 &&
		filepath.IsLocal(filepath.FromSlash(p))
}

// isImageRef is a loose check of an OCI image reference: printable, no spaces, bounded.
// The container runtime does the real parsing.
func isImageRef(s string) bool {
	if len(s) > 512 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r > 0x7e {
			return false
		}
	}
	return true
}

// keyLines maps each dotted key of a valid TOML document (tables and key/values, inline
// tables included) to the line where it is first written.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	line := func(n *unstable.Node) int {
		if n == nil || n.Raw.Length == 0 || int(n.Raw.Offset)+int(n.Raw.Length) > len(data) {
			return 0
		}
		return p.Shape(n.Raw).Start.Line
	}
	record := func(key []string, l int) {
		k := strings.Join(key, ".")
		if _, ok := lines[k]; !ok && l > 0 {
			lines[k] = l
		}
	}
	// recordKey records prefix followed by each leading part of a dotted key ("a", "a.b",
	// ...) at the line of the key's first part, and returns the whole key.
	recordKey := func(prefix []string, it unstable.Iterator) []string {
		key := slices.Clone(prefix)
		var first *unstable.Node
		for it.Next() {
			if first == nil {
				first = it.Node()
			}
			key = append(key, string(it.Node().Data))
			record(key, line(first))
		}
		return key
	}
	var walkKV func(prefix []string, kv *unstable.Node)
	walkKV = func(prefix []string, kv *unstable.Node) {
		key := recordKey(prefix, kv.Key())
		if v := kv.Value(); v != nil && v.Kind == unstable.InlineTable {
			for it := v.Children(); it.Next(); {
				if c := it.Node(); c.Kind == unstable.KeyValue {
					walkKV(key, c)
				}
			}
		}
	}
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = recordKey(nil, e.Key())
		case unstable.KeyValue:
			walkKV(table, e)
		}
	}
	return lines
}

// lookupLine finds the line of key, or of the nearest enclosing table that is written.
func lookupLine(lines map[string]int, key string) int {
	for key != "" {
		if l, ok := lines[key]; ok {
			return l
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}
