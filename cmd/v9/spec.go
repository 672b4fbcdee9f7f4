package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// specFlags are the flags that set a component's spec, shared by `create` and `update`.
// apply changes only what was given on the command line, so `update` keeps the rest.
type specFlags struct {
	min, max    uint32
	exclusive   bool
	concurrency uint32
	memory      string
	timeout     string
	env         []string
	unsetEnv    []string
	wasmModule  string
	wasmBuild   string
	image       string
	command     []string
}

func (f *specFlags) register(fs *pflag.FlagSet) {
	fs.Uint32Var(&f.min, "min", 0, "fewest replicas (wasm may be 0: scale to zero); default 1")
	fs.Uint32Var(&f.max, "max", 0, "most replicas; default max(1, --min)")
	fs.BoolVar(&f.exclusive, "exclusive", false, "never run two instances at once, even under partitions (needs --max 1)")
	fs.Uint32Var(&f.concurrency, "concurrency", 0, "in-flight requests per instance before the proxy prefers another (0: node default)")
	fs.StringVar(&f.memory, "memory", "", "memory limit per instance: bytes or with Ki, Mi, Gi (e.g. 128Mi; 0: node default)")
	fs.StringVar(&f.timeout, "timeout", "", "wall-clock limit per request, e.g. 30s or 1m30s (0: node default)")
	fs.StringArrayVar(&f.env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	fs.StringArrayVar(&f.unsetEnv, "unset-env", nil, "remove environment variable KEY (repeatable)")
	fs.StringVar(&f.wasmModule, "wasm-module", "", "wasm: path of the prebuilt module inside the artifact")
	fs.StringVar(&f.wasmBuild, "wasm-build", "", `wasm: build the module from source ("go")`)
	fs.StringVar(&f.image, "image", "", "container: OCI image reference")
	fs.StringArrayVar(&f.command, "command", nil, "container: command, one argument per flag (--command python --command /app/main.py)")
}

// apply writes the flags that were given (fs.Changed) into spec, checked against the runtime.
func (f *specFlags) apply(fs *pflag.FlagSet, rt statev1.Runtime, spec *statev1.ComponentSpec) error {
	changed := fs.Changed
	if rt == statev1.Runtime_RUNTIME_WASM && (changed("image") || changed("command")) {
		return usageError{fmt.Errorf("--image and --command are for container components, this one runs wasm")}
	}
	if rt == statev1.Runtime_RUNTIME_CONTAINER && (changed("wasm-module") || changed("wasm-build")) {
		return usageError{fmt.Errorf("--wasm-module and --wasm-build are for wasm components, this one runs in a container")}
	}
	if changed("min") {
		spec.ScaleMin = f.min
	}
	if changed("max") {
		spec.ScaleMax = f.max
	}
	if changed("exclusive") {
		spec.Exclusive = f.exclusive
	}
	if changed("concurrency") {
		spec.Concurrency = f.concurrency
	}
	if changed("memory") {
		b, err := parseMemory(f.memory)
		if err != nil {
			return usageError{fmt.Errorf("--memory: %w", err)}
		}
		spec.MemoryBytes = b
	}
	if changed("timeout") {
		ms, err := parseTimeout(f.timeout)
		if err != nil {
			return usageError{fmt.Errorf("--timeout: %w", err)}
		}
		spec.TimeoutMs = ms
	}
	if len(f.env) > 0 || len(f.unsetEnv) > 0 {
		env := make(map[string]string, len(spec.Env)+len(f.env))
		for k, v := range spec.Env {
			env[k] = v
		}
		for _, k := range f.unsetEnv {
			delete(env, k)
		}
		for _, kv := range f.env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usageError{fmt.Errorf("--env %q: want KEY=VALUE", kv)}
			}
			env[k] = v
		}
		spec.Env = env
	}
	if changed("wasm-module") || changed("wasm-build") {
		if spec.Wasm == nil {
			spec.Wasm = &statev1.WasmSpec{}
		}
		if changed("wasm-module") {
			spec.Wasm.Module = f.wasmModule
		}
		if changed("wasm-build") {
			spec.Wasm.Build = f.wasmBuild
		}
	}
	if changed("image") || changed("command") {
		if spec.Container == nil {
			spec.Container = &statev1.ContainerSpec{}
		}
		if changed("image") {
			spec.Container.Image = f.image
		}
		if changed("command") {
			spec.Container.Command = f.command
		}
	}
	return nil
}

// defaultScale fills scale.min and scale.max for a new component when the flags left them
// out: one replica unless told otherwise.
func defaultScale(fs *pflag.FlagSet, spec *statev1.ComponentSpec) {
	switch {
	case !fs.Changed("min") && !fs.Changed("max"):
		spec.ScaleMin, spec.ScaleMax = 1, 1
	case !fs.Changed("min"):
		spec.ScaleMin = min(1, spec.ScaleMax)
	case !fs.Changed("max"):
		spec.ScaleMax = max(1, spec.ScaleMin)
	}
}

func parseRuntime(s string) (statev1.Runtime, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "wasm":
		return statev1.Runtime_RUNTIME_WASM, nil
	case "container":
		return statev1.Runtime_RUNTIME_CONTAINER, nil
	case "":
		return 0, fmt.Errorf("--runtime is required: wasm or container")
	}
	return 0, fmt.Errorf("--runtime %q: want wasm or container", s)
}

var memoryUnits = []struct {
	suffix string
	mult   uint64
}{
	{"Ki", 1 << 10},
	{"Mi", 1 << 20},
	{"Gi", 1 << 30},
	{"Ti", 1 << 40},
}

// parseMemory reads a size in bytes: "134217728", "128Mi", "1Gi", "512Ki".
func parseMemory(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty size: want bytes or a number with Ki, Mi or Gi, e.g. 128Mi")
	}
	num, mult := s, uint64(1)
	for _, u := range memoryUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: want bytes or a whole number with Ki, Mi or Gi, e.g. 128Mi", s)
	}
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// parseTimeout reads a Go duration and returns it in whole milliseconds.
func parseTimeout(s string) (uint32, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: want e.g. 500ms, 30s or 2m", s)
	}
	switch {
	case d < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case d > 0 && d < time.Millisecond:
		return 0, fmt.Errorf("%q is below the 1ms resolution", s)
	case d/time.Millisecond > math.MaxUint32:
		return 0, fmt.Errorf("%q is too long", s)
	}
	return uint32(d / time.Millisecond), nil
}

// formatMemory prints bytes in the largest binary unit that divides them.
func formatMemory(b uint64) string {
	if b == 0 {
		return "default"
	}
	for i := len(memoryUnits) - 1; i >= 0; i-- {
		if u := memoryUnits[i]; b%u.mult == 0 {
			return fmt.Sprintf("%d%s", b/u.mult, u.suffix)
		}
	}
	return fmt.Sprintf("%d", b)
}
