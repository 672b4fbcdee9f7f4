package wasm

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Warm instances (Spec.Wasm.ABI == "http"): a WASI reactor is initialized once and then
// answers requests one at a time through its v9_http_serve export (the ABI is described in
// the guest package). A pool per component instance holds them.

// ABIHTTP is the warm handler ABI's name in a spec.
const ABIHTTP = "http"

// serveExport is the function a warm module exports to answer one request.
const serveExport = "v9_http_serve"

// DefaultReuse is how many requests a warm instance serves before it is replaced.
const DefaultReuse = 10000

// warmInst is one initialized reactor and its stdio.
type warmInst struct {
	mod   api.Module
	serve api.Function
	c     *call // its stdio, environment and module configuration
	uses  int
	last  time.Time // when it last finished a request
}

// warmPool keeps the initialized instances of one component instance, at most size of them,
// each serving one request at a time.
type warmPool struct {
	in    *instance
	reuse int
	idle  chan *warmInst // initialized, not serving
	slots chan struct{}  // one token per instance alive or being initialized

	mu     sync.Mutex
	closed bool
}

func newWarmPool(in *instance, size, reuse int) *warmPool {
	size = max(size, 1)
	if reuse <= 0 {
		reuse = DefaultReuse
	}
	return &warmPool{in: in, reuse: reuse, idle: make(chan *warmInst, size), slots: make(chan struct{}, size)}
}

// get returns an idle instance, initializes one if the pool has room, or waits for one.
func (p *warmPool) get(ctx context.Context) (*warmInst, error) {
	select {
	case w := <-p.idle:
		return w, nil
	default:
	}
	select {
	case w := <-p.idle:
		return w, nil
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
	if len(p.idle) > 0 {
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
	closed := p.closed
	p.mu.Unlock()
	if closed {
		p.discard(w)
		return
	}
	w.last = time.Now()
	p.idle <- w // never blocks: at most len(slots) instances exist
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
	c.cfg = in.base.WithStdin(&c.stdin).WithStdout(&c.out).WithStderr(&c.errw).
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
	return &warmInst{mod: mod, serve: mod.ExportedFunction(serveExport), c: c}, nil
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
	for range len(p.idle) {
		select {
		case w := <-p.idle:
			if now.Sub(w.last) >= idle {
				p.discard(w)
			} else {
				p.idle <- w
			}
		default:
			return
		}
	}
}

// close discards every idle instance; those serving are discarded when they finish.
func (p *warmPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case w := <-p.idle:
			p.discard(w)
		default:
			return
		}
	}
}

// size reports the instances alive or being initialized.
func (p *warmPool) size() int { return len(p.slots) }

// serveWarm answers one request on a warm instance. body is the request body, read whole.
func (in *instance) serveWarm(w http.ResponseWriter, r *http.Request, ctx context.Context, cancel context.CancelFunc, body []byte) {
	p := in.warm
	start := time.Now()
	wi, err := p.get(ctx)
	if err != nil {
		if in.stopCtx.Err() != nil || ctx.Err() != nil {
			in.waitFailed(w, start, "warm instance free")
			return
		}
		in.fail(w, http.StatusInternalServerError, "component failed", err.Error())
		return
	}
	p.prewarm()
	release, err := in.ex.enter(ctx)
	if err != nil {
		p.put(wi) // it never ran this request
		in.waitFailed(w, start, "place to run")
		return
	}

	c := wi.c
	c.body = appendWireRequest(c.body[:0], r, body)
	c.stdin.Reset(c.body)
	c.out.reset()
	c.out.limit = int(in.ex.cfg.MaxResponseBytes)
	c.out.onOverflow = cancel
	c.errw.log = in.logFn
	c.ctx = ctx
	c.start = time.Now()
	res, err := wi.serve.Call(ctx)
	release()
	c.errw.flush()
	c.ctx = nil
	if err == nil && len(res) > 0 && uint32(res[0]) != 0 {
		err = fmt.Errorf("%s returned %d", serveExport, uint32(res[0]))
	}
	in.respond(w, r, c, err)

	wi.uses++
	if err != nil || c.out.overflow || wi.uses >= p.reuse || wi.mod.IsClosed() {
		p.discard(wi) // a trap, a timeout, a failure or enough requests: never reused
	} else {
		p.put(wi)
	}
	if len(c.body) > maxPooledBytes {
		c.body = nil
	}
	c.stdin.Reset(nil)
}

// appendWireRequest writes r in HTTP/1.1 form with body as its body: the request line with
// the original path, Host, the headers but v9's own, the client's address and Content-Length.
func appendWireRequest(b []byte, r *http.Request, body []byte) []byte {
	uri := r.URL.RequestURI()
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	for name, vals := range r.Header {
		if !forwardHeader(name) {
			continue
		}
		for _, v := range vals {
			b = append(b, name...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if host, _ := splitHostPort(r.RemoteAddr, ""); host != "" {
		b = append(b, "V9-Remote-Addr: "...)
		b = append(b, r.RemoteAddr...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// forwardHeader reports whether a request header reaches a warm guest: not v9's own, not
// the ones appendWireRequest writes itself, not hop-by-hop ones.
func forwardHeader(name string) bool {
	if len(name) >= len(v9HeaderPrefix) && strings.EqualFold(name[:len(v9HeaderPrefix)], v9HeaderPrefix) {
		return false
	}
	switch http.CanonicalHeaderKey(name) {
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
	f := fns[serveExport]
	if f == nil {
		return badArtifact(nil, "module %s exports no %s: wasm.abi = %q needs a handler registered with the v9 guest package", name, serveExport, ABIHTTP)
	}
	if len(f.ParamTypes()) != 0 || !bytes.Equal(f.ResultTypes(), []api.ValueType{api.ValueTypeI32}) {
		return badArtifact(nil, "module %s: %s must take nothing and return an i32", name, serveExport)
	}
	return nil
}
