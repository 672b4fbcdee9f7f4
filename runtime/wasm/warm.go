package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/velocity9/v9/guest"
)

// Warm instances (Spec.Wasm.ABI == "http"): a WASI reactor is initialized once and then
// answers requests one at a time through its v9_http_serve2 export (the ABI is described in
// the guest package). A pool per component instance holds them.

// ABIHTTP is the warm handler ABI's name in a spec.
const ABIHTTP = "http"

// serveExport is the function a warm module exports to answer one request. A module built
// with an older guest package exports the ABI's first version instead (warm_v1.go).
const serveExport = "v9_http_serve2"

// DefaultReuse is how many requests a warm instance serves before it is replaced.
const DefaultReuse = 10000

// warmInst is one initialized reactor and its stdio.
type warmInst struct {
	mod   api.Module
	serve api.Function
	v1    bool    // serve is the ABI's first version: the head goes as HTTP/1.1 text
	c     *call   // its output buffers, environment and module configuration
	io    *warmIO // its stdin and stdout
	uses  int
	last  time.Time // when it last finished a request
	stack [1]uint64 // the serve call's result (CallWithStack: no allocation per call)
}

// warmPool keeps the initialized instances of one component instance, at most size of them,
// each serving one request at a time. Idle instances are taken last in, first out: the one
// that served last still has its memory in the CPU's caches, and under load a few instances
// serve everything instead of every request running on the coldest one.
type warmPool struct {
	in    *instance
	reuse int
	ready chan struct{} // one token per instance in idle
	slots chan struct{} // one token per instance alive or being initialized

	mu     sync.Mutex
	idle   []*warmInst // initialized, not serving; the last put is the first taken
	closed bool
}

func newWarmPool(in *instance, size, reuse int) *warmPool {
	size = max(size, 1)
	if reuse <= 0 {
		reuse = DefaultReuse
	}
	return &warmPool{in: in, reuse: reuse, ready: make(chan struct{}, size), slots: make(chan struct{}, size)}
}

// take removes an idle instance once a token of ready was received: the newest, or the
// oldest if oldest.
func (p *warmPool) take(oldest bool) *warmInst {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := len(p.idle) - 1
	if oldest {
		i = 0
	}
	w := p.idle[i]
	p.idle = append(p.idle[:i], p.idle[i+1:]...)
	return w
}

// tryGet returns the idle instance put back last, if there is one.
func (p *warmPool) tryGet() (*warmInst, bool) {
	select {
	case <-p.ready:
		return p.take(false), true
	default:
		return nil, false
	}
}

// get returns an idle instance, initializes one if the pool has room, or waits for one.
func (p *warmPool) get(ctx context.Context) (*warmInst, error) {
	if w, ok := p.tryGet(); ok {
		return w, nil
	}
	select {
	case <-p.ready:
		return p.take(false), nil
	case p.slots <- struct{}{}:
		w, err := p.start()
		if err != nil {
			<-p.slots
			return nil, err
		}
		return w, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// prewarm initializes one more instance in the background if none is idle and there is room.
func (p *warmPool) prewarm() {
	if len(p.ready) > 0 {
		return
	}
	if !p.in.acquire() { // counted as a request, so that Stop waits for it
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		p.in.finish()
		return
	}
	go func() {
		defer p.in.finish()
		w, err := p.start()
		if err != nil {
			<-p.slots
			p.in.log.Warn("warm wasm instance failed to initialize", "error", err)
			return
		}
		p.put(w)
	}()
}

// put returns an instance that may serve again.
func (p *warmPool) put(w *warmInst) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.discard(w)
		return
	}
	w.last = time.Now()
	p.idle = append(p.idle, w)
	p.ready <- struct{}{} // never blocks: at most len(slots) instances exist
	p.mu.Unlock()
}

// discard closes an instance and frees its slot.
func (p *warmPool) discard(w *warmInst) {
	_ = w.mod.Close(context.Background())
	<-p.slots
}

// start initializes one instance: the Go runtime and the package initializers run now.
func (p *warmPool) start() (*warmInst, error) {
	in := p.in
	c := new(call)
	wio := &warmIO{}
	wio.stdout.out = &c.out
	c.cfg = in.base.WithStdin(&wio.stdin).WithStdout(&wio.stdout).WithStderr(&c.errw).
		WithNanosleep(c.sleep).WithStartFunctions("_initialize")
	c.out.limit = int(in.ex.cfg.MaxResponseBytes)
	c.errw.log = in.logFn
	for _, kv := range in.env {
		_ = c.env.add(kv[0], kv[1]) // checked at Start
	}
	for _, kv := range in.httpEnv {
		_ = c.env.add(kv[0], kv[1])
	}
	ctx, cancel := context.WithTimeout(in.stopCtx, in.timeout)
	defer cancel()
	c.ctx = ctx
	ictx := experimental.WithMemoryAllocator(withEnviron(ctx, &c.env), in.ex.mem)
	release, err := in.ex.enter(ctx)
	if err != nil {
		return nil, fmt.Errorf("initialize warm instance: no place to run: %w", err)
	}
	mod, err := in.mod.rt.InstantiateModule(ictx, in.mod.compiled, c.cfg)
	release()
	c.errw.flush()
	c.ctx = nil
	if err != nil {
		if mod != nil {
			_ = mod.Close(context.Background())
		}
		return nil, fmt.Errorf("initialize warm instance: %w", err)
	}
	c.out.reset()
	wi := &warmInst{mod: mod, serve: mod.ExportedFunction(serveExport), c: c, io: wio}
	if wi.serve == nil { // checkWarmExports let it in: it exports the first version
		wi.serve, wi.v1 = mod.ExportedFunction(serveExportV1), true
	}
	return wi, nil
}

// reaper shrinks the pool while the instance runs.
func (p *warmPool) reaper(idle time.Duration) {
	t := time.NewTicker(max(idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.in.stopCtx.Done():
			return
		case <-t.C:
			p.reap(idle)
		}
	}
}

// reap closes the instances idle for longer than idle, so an unused pool shrinks to zero.
func (p *warmPool) reap(idle time.Duration) {
	now := time.Now()
	for {
		select {
		case <-p.ready:
		default:
			return
		}
		p.mu.Lock()
		if w := p.idle[0]; now.Sub(w.last) < idle { // the oldest is recent: so are the rest
			p.ready <- struct{}{}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		p.discard(p.take(true))
	}
}

// close discards every idle instance; those serving are discarded when they finish.
func (p *warmPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case <-p.ready:
			p.discard(p.take(false))
		default:
			return
		}
	}
}

// size reports the instances alive or being initialized.
func (p *warmPool) size() int { return len(p.slots) }

// serveWarm answers one request on a warm instance. The guest reads the body from the
// client as it arrives, and its response is buffered whole unless it streams it (stream.go).
func (in *instance) serveWarm(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > in.maxBody {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), in.timeout)
	defer cancel()
	stopAbort := context.AfterFunc(in.stopCtx, cancel)
	defer stopAbort()

	// A place to run first, then the instance that served last: a request waiting for a
	// place holds no instance, so that under load one or two hot instances serve it all.
	p := in.warm
	start := time.Now()
	hold := runHold{b: in.ex.run, ctx: ctx}
	if hold.enter() != nil {
		in.waitFailed(w, start, "place to run")
		return
	}
	wi, ok := p.tryGet()
	if !ok {
		hold.leave() // initializing takes a place of its own, and waiting needs none
		var err error
		if wi, err = p.get(ctx); err != nil {
			if in.stopCtx.Err() != nil || ctx.Err() != nil {
				in.waitFailed(w, start, "warm instance free")
				return
			}
			in.fail(w, http.StatusInternalServerError, "component failed", err.Error())
			return
		}
		if hold.enter() != nil {
			p.put(wi) // it never ran this request
			in.waitFailed(w, start, "place to run")
			return
		}
	}
	p.prewarm()
	wio, c := wi.io, wi.c
	wio.hold = hold

	if wi.v1 {
		c.body = appendWireRequest(c.body[:0], r)
	} else {
		c.body = appendRequest(c.body[:0], r)
	}
	c.out.reset()
	c.out.limit = int(in.ex.cfg.MaxResponseBytes)
	c.out.onOverflow = cancel
	wio.begin(ctx, w, r, c.body, in.maxBody, &c.out)
	c.errw.log = in.logFn
	c.ctx = ctx
	c.start = time.Now()
	err := wi.serve.CallWithStack(ctx, wi.stack[:])
	wio.hold.leave()
	c.errw.flush()
	c.ctx = nil
	if err == nil && uint32(wi.stack[0]) != 0 {
		err = fmt.Errorf("%s returned %d", wi.serve.Definition().ExportNames()[0], uint32(wi.stack[0]))
	}
	out, bodyErr := &wio.stdout, wio.stdin.err
	abort := false
	switch {
	case out.streaming:
		abort = in.endStream(w, r, c, out, err)
		if abort && err == nil {
			err = errStreamCut
		}
	case bodyErr != nil && err == nil && !c.out.overflow:
		// v9 answers for the body it could not deliver, whatever the guest made of that.
		// (Its own deadline, not the client's end: a read cut by a deadline cancels the
		// request's context too.)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && in.stopCtx.Err() == nil {
			in.fail(w, http.StatusGatewayTimeout, "component timed out",
				fmt.Sprintf("still waiting for the request body after %s; stopped", in.timeout))
		} else {
			in.bodyFailed(w, bodyErr)
		}
	default:
		in.respond(w, r, c, err)
	}
	wio.end()

	if cap(c.body) > maxPooledBytes {
		c.body = nil
	}
	wi.uses++
	// Nothing of wi is touched once it is back: another request may have it already.
	if err != nil || c.out.overflow || wi.uses >= p.reuse || wi.mod.IsClosed() {
		p.discard(wi) // a trap, a timeout, a failure or enough requests: never reused
	} else {
		p.put(wi)
	}
	if abort {
		// The response has begun: the client is told it is cut short by a connection
		// closed (HTTP/1.1) or a stream reset (HTTP/2) instead of a proper end.
		panic(http.ErrAbortHandler)
	}
}

// errStreamCut: a streamed response did not end properly; the instance is not reused.
var errStreamCut = errors.New("streamed response cut short")

// endStream ends a streamed response after the guest's call returned with err: it sends the
// trailers if the stream ended properly and reports false, or says why it did not in the
// logs and reports true: the response must be aborted. A stream that failed before its head
// went out is answered 502 (or as respond would) instead.
func (in *instance) endStream(w http.ResponseWriter, r *http.Request, c *call, out *warmStdout, err error) (abort bool) {
	if err == nil && out.err == nil && out.p.done() {
		for k, vs := range out.p.trailer {
			w.Header()[http.TrailerPrefix+k] = vs
		}
		return false
	}
	var reason string
	var exit *sys.ExitError
	switch {
	case c.out.overflow:
		reason = fmt.Sprintf("the component wrote more than %d bytes to stdout", in.ex.cfg.MaxResponseBytes)
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded:
		reason = fmt.Sprintf("still running after %s; stopped", in.timeout)
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled:
		reason = "cancelled (the client went away or the instance stopped)"
	case out.err != nil:
		reason = out.err.Error()
	case err != nil:
		reason = err.Error()
	default:
		reason = "the component returned before the last chunk"
	}
	if !out.headSent {
		if c.out.overflow || err != nil {
			in.respond(w, r, c, err)
		} else {
			in.fail(w, http.StatusBadGateway, "malformed streamed response", reason)
		}
		return false
	}
	in.fail(nopWriter{}, http.StatusBadGateway, "streamed response cut", reason)
	return true
}

// nopWriter discards an answer that can no longer be sent (fail still logs why).
type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriter) WriteHeader(int)             {}

// appendRequest writes r's head as the guest reads it (guest.AppendRequest): the headers but
// v9's own and hop-by-hop ones, and the client's address if it has one.
func appendRequest(b []byte, r *http.Request) []byte {
	remote := ""
	if host, _ := splitHostPort(r.RemoteAddr, ""); host != "" {
		remote = r.RemoteAddr
	}
	return guest.AppendRequest(b, r, remote, forwardHeader)
}

// forwardHeader reports whether a request header, named canonically, reaches a warm guest:
// not v9's own, not those the head carries in fields of their own, not hop-by-hop ones.
func forwardHeader(name string) bool {
	if len(name) >= len(v9HeaderPrefix) && strings.EqualFold(name[:len(v9HeaderPrefix)], v9HeaderPrefix) {
		return false
	}
	switch name { // canonical (guest.AppendRequest)
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Te",
		"Trailer", "Upgrade", "Proxy-Connection", "V9-Remote-Addr":
		return false
	}
	return true
}

// checkWarmExports rejects a module that cannot serve the "http" ABI.
func checkWarmExports(m *module, name string) error {
	fns := m.compiled.ExportedFunctions()
	if fns["_initialize"] == nil {
		return badArtifact(nil, "module %s exports no _initialize: wasm.abi = %q needs a WASI reactor (GOOS=wasip1 go build -buildmode=c-shared)", name, ABIHTTP)
	}
	export := serveExport
	f := fns[export]
	if f == nil && fns[serveExportV1] != nil {
		export, f = serveExportV1, fns[serveExportV1]
	}
	if f == nil {
		return badArtifact(nil, "module %s exports no %s: wasm.abi = %q needs a handler registered with the v9 guest package", name, serveExport, ABIHTTP)
	}
	if len(f.ParamTypes()) != 0 || !bytes.Equal(f.ResultTypes(), []api.ValueType{api.ValueTypeI32}) {
		return badArtifact(nil, "module %s: %s must take nothing and return an i32", name, export)
	}
	return nil
}
