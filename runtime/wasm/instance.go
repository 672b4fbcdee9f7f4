package wasm

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/velocity9/v9/runtime"
)

// instance is one started component. It holds no guest state: ServeHTTP instantiates the
// compiled module afresh for every request.
type instance struct {
	ex        *Executor
	id        string
	component string
	timeout   time.Duration
	maxBody   int64       // request body bound (413 past it)
	env       [][2]string // the manifest's env, sorted, less what every request overrides
	httpEnv   [][2]string // the manifest's HTTP_* variables, set unless a request header does
	logFn     runtime.LogFunc
	log       *slog.Logger

	key   moduleKey
	mod   *module
	root  *os.Root
	base  wazero.ModuleConfig // everything but the per-request environment and stdio
	calls sync.Pool           // of *call, each with its module configuration built once
	warm  *warmPool           // warm instances ("http" ABI); nil for WAGI

	stopCtx  context.Context // cancelled to abort requests in flight
	abort    context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	stopped  bool
	inflight sync.WaitGroup
	active   atomic.Int64 // requests in flight, for observers (inflight cannot be read)
	once     sync.Once
}

var _ runtime.Instance = (*instance)(nil)

func newInstance(e *Executor, spec runtime.Spec, modPath string, key moduleKey, m *module, root *os.Root) *instance {
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = e.cfg.DefaultTimeout
	}
	var env, httpEnv [][2]string
	for k, v := range spec.Env {
		switch {
		case cgiNames[k]:
		case strings.HasPrefix(k, "HTTP_"):
			httpEnv = append(httpEnv, [2]string{k, v})
		default:
			env = append(env, [2]string{k, v})
		}
	}
	byName := func(a, b [2]string) int { return strings.Compare(a[0], b[0]) }
	slices.SortFunc(env, byName)
	slices.SortFunc(httpEnv, byName)

	// No environment here: v9's environ_get hands each request its own (see environ.go).
	// No sleep either: each request gets one its deadline interrupts (call.sleep).
	base := wazero.NewModuleConfig().
		WithName("").
		WithArgs(modPath).
		WithFSConfig(artifactFS(root)).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStartFunctions() // runFresh calls _start itself, within the bound on guests

	stopCtx, abort := context.WithCancel(context.Background())
	in := &instance{
		ex:        e,
		id:        spec.ID,
		component: spec.Component,
		timeout:   timeout,
		maxBody:   cmp.Or(spec.MaxBody, e.cfg.MaxRequestBytes),
		env:       env,
		httpEnv:   httpEnv,
		logFn:     spec.Log,
		log:       e.log.With("instance", spec.ID, "component", spec.Component),
		key:       key,
		mod:       m,
		root:      root,
		base:      base,
		stopCtx:   stopCtx,
		abort:     abort,
		done:      make(chan struct{}),
	}
	if spec.Wasm.ABI == ABIHTTP {
		size := spec.Concurrency
		if size <= 0 {
			size = e.cfg.DefaultConcurrency
		}
		in.warm = newWarmPool(in, min(size, e.cfg.MaxWarm), spec.Wasm.Reuse)
		in.warm.prewarm() // initialized in the background, ready for the first request
		go in.warm.reaper(e.cfg.WarmIdle)
	}
	return in
}

// ID implements runtime.Instance.
func (in *instance) ID() string { return in.id }

// Done implements runtime.Instance. A wasm instance never stops on its own: Done is closed
// only once it has been stopped.
func (in *instance) Done() <-chan struct{} { return in.done }

// Err implements runtime.Instance. A wasm instance has no failure of its own to report; a
// failed request is answered, and logged, on its own.
func (in *instance) Err() error { return nil }

// acquire registers a request; false once the instance is stopping.
func (in *instance) acquire() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return false
	}
	in.inflight.Add(1)
	in.active.Add(1)
	return true
}

// finish ends a request registered by acquire.
func (in *instance) finish() {
	in.active.Add(-1)
	in.inflight.Done()
}

// stop refuses new requests, lets those in flight finish until ctx is done, cancels the
// rest, and releases the compiled module once none runs.
func (in *instance) stop(ctx context.Context) {
	in.mu.Lock()
	in.stopped = true
	in.mu.Unlock()
	in.once.Do(func() { close(in.done) })

	idle := make(chan struct{})
	go func() {
		in.inflight.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
		in.abort()
		<-idle // cancelled guests unwind promptly (WithCloseOnContextDone)
	}
	in.abort()
	if in.warm != nil {
		in.warm.close()
	}
	in.release()
}

// release gives back the instance's hold on its compiled module and artifact directory.
func (in *instance) release() {
	in.ex.releaseModule(in.key, in.mod)
	_ = in.root.Close()
}

// ServeHTTP implements http.Handler: one fresh module instance runs the request.
func (in *instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !in.acquire() {
		http.Error(w, "instance stopped", http.StatusServiceUnavailable)
		return
	}
	defer in.finish()
	if in.warm != nil {
		in.serveWarm(w, r)
		return
	}

	c := in.getCall()
	defer in.putCall(c)

	if err := c.readBody(r, in.maxBody); err != nil {
		in.bodyFailed(w, err)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), in.timeout)
	defer cancel()
	stopAbort := context.AfterFunc(in.stopCtx, cancel)
	defer stopAbort()
	c.out.onOverflow = cancel // stop a guest that writes past the limit right away

	ictx, err := in.requestConfig(ctx, c, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	c.start = time.Now()
	err = in.runFresh(ctx, ictx, c)
	if errors.Is(err, errNoPlace) {
		in.waitFailed(w, c.start, "place to run")
		return
	}
	c.errw.flush()
	in.respond(w, r, c, err)
}

// bodyFailed answers a request whose body v9 could not read.
func (in *instance) bodyFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
	case errors.Is(err, os.ErrDeadlineExceeded): // the door's body deadline (internal/bounds)
		http.Error(w, "request body not received in time", http.StatusRequestTimeout)
	default:
		http.Error(w, "cannot read request body", http.StatusBadRequest)
	}
}

// errNoPlace: the request's context ended while it waited for a place to run (run.go).
var errNoPlace = errors.New("no place to run")

// runFresh instantiates the module afresh and runs its _start, executing guest code within
// the executor's bound: only _start, unless instantiating runs guest code too (a start
// section), in which case all of it. ctx bounds the wait for a place; ictx carries the
// request's environment and memory allocator to wazero.
func (in *instance) runFresh(ctx, ictx context.Context, c *call) error {
	rt, compiled := in.mod.rt, in.mod.compiled
	if in.mod.start {
		if in.ex.run.enter(ctx) != nil {
			return errNoPlace
		}
		mod, err := rt.InstantiateModule(ictx, compiled, c.cfg.WithStartFunctions("_start"))
		in.ex.run.leave()
		if mod != nil {
			_ = mod.Close(context.Background())
		}
		return err
	}
	mod, err := rt.InstantiateModule(ictx, compiled, c.cfg) // no start function: no guest code
	if err != nil {
		return err
	}
	defer mod.Close(context.Background())
	if in.ex.run.enter(ctx) != nil {
		return errNoPlace
	}
	_, err = mod.ExportedFunction("_start").Call(ictx)
	in.ex.run.leave()
	// As wazero's InstantiateModule words a start function's end: exit code 0 is success,
	// another exit is returned as it is, and a trap names the function.
	var exit *sys.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		if exit.ExitCode() == 0 {
			return nil
		}
		return err
	default:
		return fmt.Errorf("module[%s] function[_start] failed: %w", mod.Name(), err)
	}
}

// respond turns the guest's fate and output into the HTTP response.
func (in *instance) respond(w http.ResponseWriter, r *http.Request, c *call, err error) {
	exit := exitError(err)
	code := uint32(0)
	if exit != nil {
		code = exit.ExitCode()
	}
	switch {
	case c.out.overflow:
		in.fail(w, http.StatusBadGateway, "response too large",
			fmt.Sprintf("the component wrote more than %d bytes to stdout", in.ex.cfg.MaxResponseBytes))
	case err == nil:
		in.writeCGI(w, c.out.buf, "")
	case exit == nil:
		// A trap: unreachable, out-of-bounds access, stack exhaustion, or a failed instantiation.
		in.fail(w, http.StatusInternalServerError, "component failed", err.Error())
	case code == sys.ExitCodeDeadlineExceeded:
		reason := fmt.Sprintf("still running after %s; stopped", in.timeout)
		if r.Context().Err() != nil { // the caller's deadline came first
			reason = fmt.Sprintf("still running when the caller's deadline passed after %s; stopped",
				time.Since(c.start).Round(time.Millisecond))
		}
		in.fail(w, http.StatusGatewayTimeout, "component timed out", reason)
	case code == sys.ExitCodeContextCanceled:
		if in.stopCtx.Err() != nil {
			in.fail(w, http.StatusServiceUnavailable, "instance stopped", "the instance was stopped during the request")
			return
		}
		// The client went away; nobody reads this answer.
		in.log.Debug("wasm request cancelled by the client", "path", r.URL.Path)
		http.Error(w, "request cancelled", http.StatusServiceUnavailable)
	case len(c.out.buf) == 0:
		in.fail(w, http.StatusInternalServerError, "component failed",
			fmt.Sprintf("exited with code %d without output", code))
	default:
		if in.writeCGI(w, c.out.buf, fmt.Sprintf(" (it exited with code %d)", code)) && in.logFn != nil {
			in.logFn("stderr", fmt.Sprintf("v9: component exited with code %d after writing its response", code))
		}
	}
}

// exitError is err's exit, if it has one. The variable errors.As is given escapes to the
// heap: it is declared only once there is an error, not for every request.
func exitError(err error) *sys.ExitError {
	if err == nil {
		return nil
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return exit
	}
	return nil
}

// writeCGI answers with the guest's CGI output, or 502 if it is malformed; it reports which.
func (in *instance) writeCGI(w http.ResponseWriter, out []byte, exitNote string) bool {
	res, err := parseCGI(out)
	if err != nil {
		in.fail(w, http.StatusBadGateway, "malformed CGI response", err.Error()+exitNote)
		return false
	}
	h := w.Header()
	for k, vs := range res.header {
		h[k] = vs
	}
	if bodyAllowed(res.status) {
		h["Content-Length"] = []string{strconv.Itoa(len(res.body))}
	}
	w.WriteHeader(res.status)
	if len(res.body) > 0 && bodyAllowed(res.status) {
		_, _ = w.Write(res.body)
	}
	return true
}

// fail answers a short error and says why in the component's log and the node's.
func (in *instance) fail(w http.ResponseWriter, status int, msg, reason string) {
	if ok, n := in.ex.cfg.FailLogs.Allow(msg); ok {
		in.log.Warn("wasm request failed", "status", status, "error", msg, "reason", reason, "suppressed", n)
	}
	if in.logFn != nil {
		lines := strings.Split(strings.TrimRight(reason, "\n"), "\n")
		if len(lines) > maxReasonLines {
			lines = append(lines[:maxReasonLines], "...")
		}
		in.logFn("stderr", fmt.Sprintf("v9: %d %s: %s", status, msg, lines[0]))
		for _, l := range lines[1:] {
			in.logFn("stderr", "v9:   "+l)
		}
	}
	http.Error(w, msg, status)
}

// maxReasonLines bounds how much of a wasm stack trace goes to the component's log.
const maxReasonLines = 20

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// call is the per-request scratch state, pooled per instance: cfg, the module configuration
// pointing at its stdio and sleep, is built once with it and reused by every request it
// serves.
type call struct {
	body  []byte
	stdin bytes.Reader
	out   limitedBuffer
	errw  lineWriter
	env   environ
	ctx   context.Context // the request's, for sleep
	cfg   wazero.ModuleConfig
	start time.Time
}

// Pooled buffers bigger than this are dropped rather than kept.
const maxPooledBytes = 1 << 20

func (in *instance) getCall() *call {
	c, _ := in.calls.Get().(*call)
	if c == nil {
		c = new(call)
		c.cfg = in.base.WithStdin(&c.stdin).WithStdout(&c.out).WithStderr(&c.errw).WithNanosleep(c.sleep)
	}
	c.out.limit = int(in.ex.cfg.MaxResponseBytes)
	c.errw.log = in.logFn
	return c
}

func (in *instance) putCall(c *call) {
	if cap(c.body) > maxPooledBytes {
		c.body = nil
	}
	if cap(c.out.buf) > maxPooledBytes {
		c.out.buf = nil
	}
	if cap(c.errw.buf) > maxPooledBytes {
		c.errw.buf = nil
	}
	c.body = c.body[:0]
	c.stdin.Reset(nil)
	c.out.reset()
	c.errw.reset()
	if cap(c.env.buf) > maxPooledBytes {
		c.env = environ{}
	}
	c.env.reset()
	c.ctx = nil
	in.calls.Put(c)
}

// readBody reads the request body whole (CONTENT_LENGTH must be known before the guest
// starts), refusing more than limit bytes. Memory grows with the bytes that arrive, never
// with the length the client declares: a request that announces 10 MiB and sends one byte
// costs one read buffer, not 10 MiB.
func (c *call) readBody(r *http.Request, limit int64) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if r.ContentLength > limit {
		return errBodyTooLarge
	}
	buf := bytes.NewBuffer(c.body[:0])
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	c.body = buf.Bytes()
	var mbe *http.MaxBytesError
	switch {
	case int64(len(c.body)) > limit, errors.As(err, &mbe):
		return errBodyTooLarge
	case err != nil:
		return err
	}
	return nil
}
