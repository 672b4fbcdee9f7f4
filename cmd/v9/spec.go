package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9spec "github.com/velocity9/v9/spec"
)

// specFlags are the flags that set a component's spec, shared by `create` and `update`.
// apply changes only what was given on the command line, so `update` keeps the rest.
type specFlags struct {
	min, max    uint32
	exclusive   bool
	concurrency uint32
	memory      string
	body        string
	timeout     string
	env         []string
	unsetEnv    []string
	wasmModule  string
	wasmBuild   string
	wasmABI     string
	wasmReuse   uint32
	image       string
	command     []string
}

func (f *specFlags) register(fs *pflag.FlagSet) {
	fs.Uint32Var(&f.min, "min", 0, "fewest replicas (0: scale to zero when idle); default 1")
	fs.Uint32Var(&f.max, "max", 0, "most replicas; default max(1, --min)")
	fs.BoolVar(&f.exclusive, "exclusive", false, "never run two instances at once, even under partitions (needs --max 1)")
	fs.Uint32Var(&f.concurrency, "concurrency", 0, "in-flight requests per instance before the proxy prefers another (0: node default)")
	fs.StringVar(&f.memory, "memory", "", "memory limit per instance: bytes or with Ki, Mi, Gi, Ti (e.g. 128Mi; 16Mi..64Gi; 0: node default)")
	fs.StringVar(&f.body, "body", "", "largest request body: bytes or with Ki, Mi, Gi (e.g. 10Mi; at most 1Gi; 0: default 10Mi); more is answered 413")
	fs.StringVar(&f.timeout, "timeout", "", "wall-clock limit per request, e.g. 30s or 1m30s (at most 15m; 0: node default)")
	fs.StringArrayVar(&f.env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	fs.StringArrayVar(&f.unsetEnv, "unset-env", nil, "remove environment variable KEY (repeatable)")
	fs.StringVar(&f.wasmModule, "wasm-module", "", "wasm: path of the prebuilt module inside the artifact")
	fs.StringVar(&f.wasmBuild, "wasm-build", "", `wasm: build the module from source ("go")`)
	fs.StringVar(&f.wasmABI, "wasm-abi", "", `wasm: "http" for warm instances of a reactor built with the v9 guest package ("" : WAGI, a fresh instance per request)`)
	fs.Uint32Var(&f.wasmReuse, "wasm-reuse", 0, `wasm: with --wasm-abi http, requests a warm instance serves before it is replaced (0: node default; 1: fresh per request)`)
	fs.StringVar(&f.image, "image", "", "container: OCI image reference")
	fs.StringArrayVar(&f.command, "command", nil, "container: command, one argument per flag (--command python --command /app/main.py)")
}

// apply writes the flags that were given (fs.Changed) into spec, checked against the runtime.
func (f *specFlags) apply(fs *pflag.FlagSet, rt statev1.Runtime, spec *statev1.ComponentSpec) error {
	changed := fs.Changed
	if rt == statev1.Runtime_RUNTIME_WASM && (changed("image") || changed("command")) {
		return usageError{fmt.Errorf("--image and --command are for container components, this one runs wasm")}
	}
	if rt == statev1.Runtime_RUNTIME_CONTAINER && (changed("wasm-module") || changed("wasm-build") || changed("wasm-abi") || changed("wasm-reuse")) {
		return usageError{fmt.Errorf("--wasm-module, --wasm-build, --wasm-abi and --wasm-reuse are for wasm components, this one runs in a container")}
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
		b, err := v9spec.ParseMemory(f.memory)
		if err != nil {
			return usageError{fmt.Errorf("--memory: %w", err)}
		}
		spec.MemoryBytes = b
	}
	if changed("body") {
		b, err := v9spec.ParseMemory(f.body)
		if err != nil {
			return usageError{fmt.Errorf("--body: %w", err)}
		}
		spec.BodyBytes = b
	}
	if changed("timeout") {
		ms, err := v9spec.ParseTimeout(f.timeout)
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
	if changed("wasm-module") || changed("wasm-build") || changed("wasm-abi") || changed("wasm-reuse") {
		if spec.Wasm == nil {
			spec.Wasm = &statev1.WasmSpec{}
		}
		if changed("wasm-module") {
			spec.Wasm.Module = f.wasmModule
		}
		if changed("wasm-build") {
			spec.Wasm.Build = f.wasmBuild
		}
		if changed("wasm-abi") {
			spec.Wasm.Abi = f.wasmABI
		}
		if changed("wasm-reuse") {
			spec.Wasm.Reuse = f.wasmReuse
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
// out, by package spec's rule.
func defaultScale(fs *pflag.FlagSet, spec *statev1.ComponentSpec) {
	spec.ScaleMin, spec.ScaleMax = v9spec.DefaultScale(fs.Changed("min"), fs.Changed("max"), spec.ScaleMin, spec.ScaleMax)
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

// formatMemory prints a memory limit; 0 is the node's default.
func formatMemory(b uint64) string {
	if b == 0 {
		return "default"
	}
	return v9spec.FormatMemory(b)
}
