package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/velocity9/v9/internal/loglimit"
	"github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/wasm/internal/interrupt"
)

// Defaults for the zero values of Config.
const (
	DefaultMemoryBytes      = 128 << 20
	DefaultTimeout          = 30 * time.Second
	DefaultMaxRequestBytes  = 10 << 20
	DefaultMaxResponseBytes = 10 << 20
	DefaultWarmIdle         = 2 * time.Minute
	DefaultConcurrency      = 50
)

const (
	pageSize = 1 << 16 // bytes in a wasm memory page
	maxPages = 1 << 16 // 4 GiB, the most a 32-bit memory can address
)

// Errors the executor returns besides runtime.ErrBadArtifact. Callers test them with errors.Is.
var (
	// ErrClosed: the executor has been closed.
	ErrClosed = errors.New("wasm executor closed")
	// ErrDuplicateID: an instance with that id is already running on this executor.
	ErrDuplicateID = errors.New("instance id already running")
)

// Config configures an Executor. The zero value is usable: defaults are filled in.
type Config struct {
	// CacheDir holds wazero's compilation cache so a restarted node does not compile its
	// modules again. Empty: the cache lives in memory only.
	CacheDir string
	// DefaultMemoryBytes is an instance's memory limit when its spec names none (128 MiB).
	DefaultMemoryBytes uint64
	// DefaultTimeout is a request's wall-clock limit when the spec names none (30 s).
	DefaultTimeout time.Duration
	// MaxRequestBytes bounds a request body (10 MiB); a larger one is answered 413.
	MaxRequestBytes int64
	// MaxResponseBytes bounds what a guest writes to stdout (10 MiB); more is answered 502.
	MaxResponseBytes int64
	// WarmIdle is how long a warm instance ("http" ABI) may stay idle before it is closed,
	// so that an unused component's pool shrinks to zero (2 minutes).
	WarmIdle time.Duration
	// DefaultConcurrency sizes a warm pool when the spec names no concurrency (50).
	DefaultConcurrency int
	// MaxWarm caps one warm pool whatever the concurrency (2 × GOMAXPROCS): guests compute,
	// so more instances than cores add memory and garbage collection, not throughput, and
	// requests past the cap wait for a free instance.
	MaxWarm int
	// MaxRunning bounds the guests executing at once, over every component (run.go).
	// Zero: GOMAXPROCS-1, at least 1, shared by every executor of the process that leaves
	// it zero (the nodes of `v9 dev` and of tests share the Ps). Requests past it wait.
	MaxRunning int
	// Logger receives the executor's own events; nil discards them.
	Logger *slog.Logger
	// FailLogs limits the node log's lines about failed requests (any client can make a
	// component fail); nil: one per kind every loglimit.DefaultEvery. The component's own
	// log gets every failure.
	FailLogs *loglimit.Limiter
}

func (c Config) withDefaults() Config {
	if c.DefaultMemoryBytes == 0 {
		c.DefaultMemoryBytes = DefaultMemoryBytes
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = DefaultTimeout
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.WarmIdle <= 0 {
		c.WarmIdle = DefaultWarmIdle
	}
	if c.MaxWarm <= 0 {
		c.MaxWarm = 2 * goruntime.GOMAXPROCS(0)
	}
	if c.DefaultConcurrency <= 0 {
		c.DefaultConcurrency = DefaultConcurrency
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FailLogs == nil {
		c.FailLogs = loglimit.New(loglimit.DefaultEvery, nil, nil)
	}
	return c
}

// Executor runs wasm components on this node. It is safe for concurrent use.
type Executor struct {
	cfg   Config
	log   *slog.Logger
	cache wazero.CompilationCache
	mem   *memoryPool // recycled linear memories
	run   *bound      // the guests executing (run.go)

	mu        sync.Mutex
	closed    bool
	starting  sync.WaitGroup // Starts in progress; Close waits for them
	runtimes  map[runtimeKey]wazero.Runtime
	modules   map[moduleKey]*module
	instances map[string]*instance
}

var _ runtime.Executor = (*Executor)(nil)

// moduleKey names one compiled module: the same bytes compiled for one runtime.
type moduleKey struct {
	pages uint32 // the memory limit of the runtime it was compiled in
	id    string // artifact digest and module path, or the module's own sha256
	warm  bool   // compiled for the "http" ABI: made interruptible if it can be (interrupt.go)
}

// runtimeKey names one runtime: its memory limit, and whether wazero itself stops guests
// when their context ends (not for modules made interruptible, interrupt.go).
type runtimeKey struct {
	pages        uint32
	ownInterrupt bool
}

// module is a compiled module shared by the instances started from it.
type module struct {
	ready     chan struct{} // closed once compiled or err is set
	compiled  wazero.CompiledModule
	rt        wazero.Runtime
	interrupt bool // made interruptible (interrupt.go); its runtime does not check
	start     bool // instantiating it executes guest code: it has a start section
	err       error
	refs      int // guarded by Executor.mu
}

// New returns an executor. Close it to release its runtimes, compiled modules and cache.
func New(cfg Config) (*Executor, error) {
	cfg = cfg.withDefaults()
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm compilation cache %s: %w", cfg.CacheDir, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	return &Executor{
		cfg:       cfg,
		log:       cfg.Logger.With("runtime", "wasm"),
		cache:     cache,
		mem:       &memoryPool{},
		run:       runSlots(cfg.MaxRunning),
		runtimes:  make(map[runtimeKey]wazero.Runtime),
		modules:   make(map[moduleKey]*module),
		instances: make(map[string]*instance),
	}, nil
}

// Runtime implements runtime.Executor.
func (e *Executor) Runtime() string { return "wasm" }

// Start implements runtime.Executor: it compiles the module (once per artifact digest and
// memory limit) and returns an instance that runs it once per request. Errors caused by the
// artifact match runtime.ErrBadArtifact.
func (e *Executor) Start(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	if spec.ID == "" {
		return nil, errors.New("start wasm instance: spec has no id")
	}
	modPath, err := cleanModulePath(spec.Wasm.Module)
	if err != nil {
		return nil, err
	}
	if a := spec.Wasm.ABI; a != "" && a != ABIHTTP {
		return nil, badArtifact(nil, "wasm ABI %q is not supported (\"\" or %q)", a, ABIHTTP)
	}
	for k, v := range spec.Env {
		if err := checkEnv(k, v); err != nil {
			return nil, fmt.Errorf("start wasm instance: env %w", err)
		}
	}

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if _, dup := e.instances[spec.ID]; dup {
		e.mu.Unlock()
		return nil, fmt.Errorf("start wasm instance %s: %w", spec.ID, ErrDuplicateID)
	}
	e.starting.Add(1)
	e.mu.Unlock()
	defer e.starting.Done()

	root, err := os.OpenRoot(spec.Dir)
	if err != nil {
		return nil, badArtifact(err, "artifact directory cannot be opened: %v", err)
	}
	memBytes := spec.MemoryBytes
	if memBytes == 0 {
		memBytes = e.cfg.DefaultMemoryBytes
	}
	pages := memoryPages(memBytes)

	var bin []byte
	key := moduleKey{pages: pages, id: spec.Digest + "\x00" + modPath, warm: spec.Wasm.ABI == ABIHTTP}
	if spec.Digest == "" {
		// Without a digest, the module's own content names it.
		if bin, err = readModule(root, modPath); err != nil {
			root.Close()
			return nil, err
		}
		sum := sha256.Sum256(bin)
		key.id = "sha256:" + hex.EncodeToString(sum[:])
	}
	load := func() ([]byte, error) {
		if bin != nil {
			return bin, nil
		}
		return readModule(root, modPath)
	}

	m, err := e.acquireModule(ctx, key, modPath, load)
	if err != nil {
		root.Close()
		return nil, err
	}
	if err := checkEntry(m, modPath, spec.Wasm.ABI); err != nil {
		e.releaseModule(key, m)
		root.Close()
		return nil, err
	}
	in := newInstance(e, spec, modPath, key, m, root)

	e.mu.Lock()
	_, dup := e.instances[spec.ID]
	if e.closed || dup {
		e.mu.Unlock()
		in.release()
		if dup {
			return nil, fmt.Errorf("start wasm instance %s: %w", spec.ID, ErrDuplicateID)
		}
		return nil, ErrClosed
	}
	e.instances[spec.ID] = in
	e.mu.Unlock()
	e.log.Info("wasm instance started", "instance", spec.ID, "component", spec.Component,
		"module", modPath, "memory_bytes", uint64(pages)*pageSize, "timeout", in.timeout, "abi", spec.Wasm.ABI)
	return in, nil
}

// Stop implements runtime.Executor. New requests are refused at once; requests in flight may
// finish until ctx is done, then they are cancelled. Stopping an unknown id returns nil.
func (e *Executor) Stop(ctx context.Context, id string) error {
	e.mu.Lock()
	in := e.instances[id]
	delete(e.instances, id)
	e.mu.Unlock()
	if in == nil {
		return nil
	}
	in.stop(ctx)
	e.log.Info("wasm instance stopped", "instance", id, "component", in.component)
	return nil
}

// Close stops every instance at once and releases the compiled modules, the runtimes and the
// compilation cache. It is idempotent.
func (e *Executor) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ins := make([]*instance, 0, len(e.instances))
	for _, in := range e.instances {
		ins = append(ins, in)
	}
	clear(e.instances)
	e.mu.Unlock()

	e.starting.Wait()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, in := range ins {
		in.stop(cancelled) // cancel in-flight requests at once, wait for them to unwind
	}

	ctx := context.Background()
	var errs []error
	e.mu.Lock()
	for k, m := range e.modules {
		if m.compiled != nil {
			errs = append(errs, m.compiled.Close(ctx))
		}
		delete(e.modules, k)
	}
	for p, rt := range e.runtimes {
		errs = append(errs, rt.Close(ctx))
		delete(e.runtimes, p)
	}
	e.mu.Unlock()
	errs = append(errs, e.cache.Close(ctx))
	return errors.Join(errs...)
}

// acquireModule returns the compiled module for key, compiling it on first use, and takes a
// reference on it that releaseModule gives back.
func (e *Executor) acquireModule(ctx context.Context, key moduleKey, name string, load func() ([]byte, error)) (*module, error) {
	e.mu.Lock()
	if m, ok := e.modules[key]; ok {
		m.refs++
		e.mu.Unlock()
		select {
		case <-m.ready:
		case <-ctx.Done():
			e.releaseModule(key, m)
			return nil, ctx.Err()
		}
		if m.err != nil {
			e.releaseModule(key, m)
			return nil, m.err
		}
		return m, nil
	}
	m := &module{ready: make(chan struct{}), refs: 1}
	e.modules[key] = m
	e.mu.Unlock()

	m.compiled, m.err = e.compile(ctx, m, key, name, load)
	close(m.ready)
	if m.err != nil {
		e.releaseModule(key, m)
		return nil, m.err
	}
	return m, nil
}

// releaseModule drops a reference; the last one closes the compiled module.
func (e *Executor) releaseModule(key moduleKey, m *module) {
	e.mu.Lock()
	m.refs--
	last := m.refs == 0
	if last && e.modules[key] == m {
		delete(e.modules, key)
	}
	e.mu.Unlock()
	if last && m.compiled != nil {
		if err := m.compiled.Close(context.Background()); err != nil {
			e.log.Warn("close compiled wasm module", "error", err)
		}
	}
}

// runtimeFor returns the runtime for k, creating it on first use.
func (e *Executor) runtimeFor(k runtimeKey) (wazero.Runtime, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if rt, ok := e.runtimes[k]; ok {
		return rt, nil
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(e.cache).
		WithCloseOnContextDone(!k.ownInterrupt).
		WithMemoryLimitPages(k.pages))
	if err := instantiateWASI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate wasi_snapshot_preview1: %w", err)
	}
	e.runtimes[k] = rt
	return rt, nil
}

// compile compiles a module into m and checks that v9 can run it: a WASI command that
// imports nothing but wasi_snapshot_preview1. A warm module gets its own interrupt check
// if it can (interrupt.go).
func (e *Executor) compile(ctx context.Context, m *module, key moduleKey, name string, load func() ([]byte, error)) (wazero.CompiledModule, error) {
	bin, err := load()
	if err != nil {
		return nil, err
	}
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, badArtifact(nil, "module %s is not a WebAssembly module: it does not start with the \\0asm magic number (first bytes %q)",
			name, bin[:min(len(bin), 8)])
	}
	// Compilation ignores cancellation; one caller giving up must not fail the others waiting.
	cctx := experimental.WithCompilationWorkers(context.WithoutCancel(ctx), goruntime.GOMAXPROCS(0))
	t0 := time.Now()
	var cm wazero.CompiledModule
	if key.warm {
		ib, err := interrupt.Rewrite(bin)
		if err == nil {
			m.rt, err = e.runtimeFor(runtimeKey{pages: key.pages, ownInterrupt: true})
			if err != nil {
				return nil, err
			}
			if cm, err = m.rt.CompileModule(cctx, ib); err == nil {
				m.interrupt = true
			}
		}
		if err != nil {
			e.log.Info("warm wasm module keeps wazero's interrupt check", "module", name, "reason", err)
		}
	}
	if cm == nil {
		if m.rt, err = e.runtimeFor(runtimeKey{pages: key.pages}); err != nil {
			return nil, err
		}
		if cm, err = m.rt.CompileModule(cctx, bin); err != nil {
			return nil, badArtifact(err, "module %s is not a valid WebAssembly module: %v", name, err)
		}
	}
	if err := checkImports(m.rt, cm, name); err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	e.log.Info("wasm module compiled", "module", name, "bytes", len(bin), "took", time.Since(t0), "own_interrupt", m.interrupt)
	m.start = hasStartSection(bin)
	return cm, nil
}

// checkImports rejects modules that need what v9 does not give: host functions other than
// WASI preview1's or an imported memory.
func checkImports(rt wazero.Runtime, cm wazero.CompiledModule, name string) error {
	wasi := rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions()
	for _, f := range cm.ImportedFunctions() {
		mod, fn, _ := f.Import()
		if mod != wasi_snapshot_preview1.ModuleName || wasi[fn] == nil {
			return badArtifact(nil, "module %s imports %s.%s, which v9 does not provide (only %s)",
				name, mod, fn, wasi_snapshot_preview1.ModuleName)
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, field, _ := m.Import()
		return badArtifact(nil, "module %s imports its memory (%s.%s); it must define its own", name, mod, field)
	}
	return nil
}

// checkEntry checks that a module has what its ABI calls: _start for WAGI, or the warm
// exports.
func checkEntry(m *module, name, abi string) error {
	if abi == ABIHTTP {
		return checkWarmExports(m, name)
	}
	if m.compiled.ExportedFunctions()["_start"] == nil {
		return badArtifact(nil, "module %s exports no _start function: it is not a WASI command module (a reactor needs wasm.abi = %q)", name, ABIHTTP)
	}
	return nil
}

// readModule reads the module through root, so neither ".." nor a symbolic link can leave
// the artifact directory.
func readModule(root *os.Root, name string) ([]byte, error) {
	bin, err := root.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, badArtifact(err, "module %s not found in the artifact", name)
	case err != nil:
		return nil, badArtifact(err, "module %s cannot be read: %v", name, err)
	}
	return bin, nil
}

// cleanModulePath checks that a manifest's module path names a file inside the artifact.
func cleanModulePath(p string) (string, error) {
	if p == "" {
		return "", badArtifact(nil, "no wasm module named (set [wasm] module in v9.toml)")
	}
	slash := filepath.ToSlash(p)
	if filepath.IsAbs(p) || strings.HasPrefix(slash, "/") || !filepath.IsLocal(p) {
		return "", badArtifact(nil, "module path %q must be relative and stay inside the artifact", p)
	}
	return filepath.Clean(p), nil
}

// memoryPages turns a byte limit into wasm pages, rounding up, within [1, 65536].
func memoryPages(b uint64) uint32 {
	p := (b + pageSize - 1) / pageSize
	return uint32(min(max(p, 1), maxPages))
}

// checkEnv rejects what WASI cannot carry in an environment variable.
func checkEnv(k, v string) error {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return fmt.Errorf("name %q is not a valid environment variable name", k)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%s: value contains a NUL byte", k)
	}
	return nil
}

// artifactError is a Start failure caused by the artifact. Its message is fit for a
// deployment's status; it matches runtime.ErrBadArtifact and the underlying cause.
type artifactError struct {
	msg   string
	cause error
}

func badArtifact(cause error, format string, args ...any) error {
	return &artifactError{msg: fmt.Sprintf(format, args...), cause: cause}
}

func (e *artifactError) Error() string { return e.msg }

func (e *artifactError) Unwrap() []error {
	if e.cause == nil {
		return []error{runtime.ErrBadArtifact}
	}
	return []error{runtime.ErrBadArtifact, e.cause}
}

// CheckModule reports whether v9 can run a module, without running it: valid WebAssembly,
// importing only WASI preview1's host functions, with its own memory and a _start. Uploads
// and builds call it (through deploy.CheckRunnable), so that a module needing a host
// function v9 lacks fails before any node tries it, with the error naming the import. The
// executor applies the same rules when it compiles.
func CheckModule(ctx context.Context, name string, bin []byte) error {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return badArtifact(nil, "module %s is not a WebAssembly module: it does not start with the \\0asm magic number", name)
	}
	// The interpreter only decodes and validates here: nothing is compiled to machine code.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(context.WithoutCancel(ctx))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fmt.Errorf("instantiate wasi_snapshot_preview1: %w", err)
	}
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return badArtifact(err, "module %s is not a valid WebAssembly module: %v", name, err)
	}
	defer cm.Close(context.WithoutCancel(ctx))
	return checkImports(rt, cm, name)
}
