// Package proxy answers HTTP for components on every node. It finds the component from the
// Host (<name>.<domain>) or the first path segment, then serves the request from an instance
// on this node or forwards it to a node that runs one, retrying another instance when a
// connection fails before any byte was sent. It counts requests per component and writes
// access logs. It reads a routing view through Router and never writes cluster state, so it
// keeps serving from its last known view when the control plane is down.
//
// It bounds what one client can make it do: headers (431), each component's request body
// (413, counted while reading, never reserved ahead), and each component's requests in
// flight on this node with a bounded queue in front (429 with Retry-After), so a flooded
// component does not slow the others. The same gate bounds the requests held while a
// component at zero starts an instance on demand (503 with Retry-After past it). What anyone can trigger is logged at a bounded rate.
package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/velocity9/v9/internal/loglimit"
)

// Headers the proxy sets.
const (
	// HopHeader marks a request forwarded by another node's proxy: it is served locally or
	// refused, never forwarded again.
	HopHeader = "X-V9-Hop"
	// ScriptNameHeader carries the path prefix the route consumed ("/hello" when routed by
	// path, "" by host). Executors derive SCRIPT_NAME and PATH_INFO from it.
	ScriptNameHeader = "X-V9-Script-Name"
	// ServedByHeader names the node whose instance answered.
	ServedByHeader = "X-V9-Served-By"
	// noInstanceHeader marks a 503 from a node that had no instance, so the caller tries
	// another.
	noInstanceHeader = "X-V9-No-Instance"
)

// Target is where a component's requests can go now.
type Target struct {
	Found  bool
	Paused bool
	// Local holds this node's instances. InProcess says they cost nothing to reach (wasm),
	// so they are always preferred.
	Local     []http.Handler
	InProcess bool
	// Remote holds proxy addresses of other nodes that run an instance.
	Remote []string
	// OnDemand, when not nil, serves a request on this node without a placement, starting
	// an instance if need be while the request waits (bounded). It is the fallback when no
	// instance runs (a component scaled to zero) or none answers (its nodes just died).
	OnDemand http.Handler
	// Canary, when set, is a new version in its canary phase: it gets Percent of the
	// requests entering here, and Local and Remote (the older versions) the rest.
	Canary *Canary
	// Unavailable, when set, says why this node serves nothing now (it is starting and
	// does not know the component yet, or it was removed from the cluster): the answer
	// is 503 with Retry-After, never 404, and a forwarding node tries another.
	Unavailable string
	// MaxBody bounds a request body (the manifest's limits.body); 0: Bounds.MaxBody.
	MaxBody int64
	// Concurrency is the component's requests in flight per instance (limits.concurrency);
	// 0: Bounds.Concurrency.
	Concurrency int
}

// Bounds are the proxy's per-request bounds. Zero fields take DefaultBounds.
type Bounds struct {
	MaxHeaders     int           // header fields in one request (431 past it)
	MaxHeaderBytes int           // names and values of all header fields together (431)
	MaxBody        int64         // a request body, when the component sets none (413)
	Concurrency    int           // requests in flight per instance, when the component sets none
	QueueWait      time.Duration // the longest a request waits for a place in flight (429 after)
}

// DefaultBounds: 100 headers and 32 KiB of them (browsers send some 20 and 2 KiB), the
// spec's default body (10 MiB) and concurrency (50), and a second in the queue.
func DefaultBounds() Bounds {
	return Bounds{MaxHeaders: 100, MaxHeaderBytes: 32 << 10, MaxBody: 10 << 20, Concurrency: 50, QueueWait: time.Second}
}

// Router resolves a component name to its targets. It is called on every request and must
// be cheap.
type Router interface {
	Lookup(component string) Target
}

// Config configures a Proxy.
type Config struct {
	NodeID string
	Domain string // requests for <name>.<Domain> route by host; default "localhost"
	Router Router
	Stats  *Stats // may be nil
	Load   *Load  // may be nil
	// Access receives one access-log line per request for the component's log.
	Access func(component, line string)
	Logger *slog.Logger
	// Transport forwards to other nodes; default a pooled http.Transport.
	Transport http.RoundTripper
	Bounds    Bounds
	// Logs limits the log lines requests can trigger (nil: one per kind every
	// loglimit.DefaultEvery, not counted).
	Logs *loglimit.Limiter
	// Private is what is removed from every request before it goes anywhere (private.go).
	Private Private
	// Peer reports whether a request's source address is a member of the cluster, whose
	// proxy forwards with HopHeader and VersionHeader (nil: every source is). A client can
	// send those headers too: from anyone else they still keep the request from being
	// forwarded again (so no loop can form), but they choose no version and the request is
	// counted in the component's load as any entering request is.
	Peer func(netip.Addr) bool
}

// Proxy is an http.Handler for a node's proxy port.
type Proxy struct {
	cfg     Config
	rr      sync.Map // component -> *atomic.Uint64
	suspect sync.Map // remote proxy address -> time.Time until which it is tried last
	gates   gates
}

// New returns a Proxy.
func New(cfg Config) *Proxy {
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	d := DefaultBounds()
	b := &cfg.Bounds
	b.MaxHeaders = cmp.Or(b.MaxHeaders, d.MaxHeaders)
	b.MaxHeaderBytes = cmp.Or(b.MaxHeaderBytes, d.MaxHeaderBytes)
	b.MaxBody = cmp.Or(b.MaxBody, d.MaxBody)
	b.Concurrency = cmp.Or(b.Concurrency, d.Concurrency)
	b.QueueWait = cmp.Or(b.QueueWait, d.QueueWait)
	if cfg.Logs == nil {
		cfg.Logs = loglimit.New(loglimit.DefaultEvery, nil, nil)
	}
	return &Proxy{cfg: cfg, gates: gates{wait: b.QueueWait}}
}

// Route extracts the component name and the consumed path prefix from a request.
func Route(r *http.Request, domain string) (name, scriptName string) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	if sub, ok := strings.CutSuffix(host, "."+domain); ok && sub != "" && !strings.Contains(sub, ".") {
		return sub, ""
	}
	seg := strings.TrimPrefix(r.URL.Path, "/")
	if i := strings.IndexByte(seg, '/'); i >= 0 {
		seg = seg[:i]
	}
	if seg == "" {
		return "", ""
	}
	return seg, "/" + seg
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p.cfg.Private.strip(r.Header)
	name, script := Route(r, p.cfg.Domain)
	rec := &recorder{ResponseWriter: w, status: 0}
	if name == "" {
		p.serve(rec, r, name, script)
		return
	}
	served := false
	defer func() {
		if !served { // a stream cut with http.ErrAbortHandler (or any panic) is logged too
			p.account(r, rec, name, start, true)
		}
	}()
	p.serve(rec, r, name, script)
	served = true
	p.account(r, rec, name, start, false)
}

// fromPeer reports whether r came from a member of the cluster (Config.Peer).
func (p *Proxy) fromPeer(r *http.Request) bool {
	if p.cfg.Peer == nil {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && p.cfg.Peer(ap.Addr())
}

// Unrouted is the name under which requests for names that route to no component are
// counted and logged: anyone may send any Host or path, and a series, a log ring and
// rollups per name would grow without bound.
const Unrouted = "-"

// account counts a request in the component's stats and writes its access-log line.
func (p *Proxy) account(r *http.Request, rec *recorder, name string, start time.Time, aborted bool) {
	if !rec.known {
		name = Unrouted
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
		if aborted {
			status = http.StatusBadGateway // nothing reached the client but a cut connection
		}
	}
	d := time.Since(start)
	if p.cfg.Stats != nil {
		p.cfg.Stats.Observe(name, status, d)
	}
	line := r.Method + " " + r.URL.RequestURI() + " " + strconv.Itoa(status) + " " + strconv.FormatInt(rec.bytes, 10) + "B " + d.Round(time.Microsecond).String()
	if aborted {
		line += " aborted"
	}
	if hop := r.Header.Get(HopHeader); hop != "" {
		line += " via " + hop
	}
	if p.cfg.Access != nil {
		p.cfg.Access(name, line)
	}
	if p.cfg.Logger.Enabled(r.Context(), slog.LevelDebug) { // the arguments cost allocations
		p.cfg.Logger.Debug("request", "component", name, "method", r.Method, "path", r.URL.Path, "status", status, "dur", d, "aborted", aborted)
	}
}

func (p *Proxy) serve(w *recorder, r *http.Request, name, script string) {
	if n, size := headerSize(r.Header); n > p.cfg.Bounds.MaxHeaders || size > p.cfg.Bounds.MaxHeaderBytes {
		http.Error(w, fmt.Sprintf("v9: request headers too large (%d fields, %d bytes; the limit is %d fields, %d bytes)",
			n, size, p.cfg.Bounds.MaxHeaders, p.cfg.Bounds.MaxHeaderBytes), http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	if name == "" {
		http.Error(w, "v9: no component in the request: use http://<component>."+p.cfg.Domain+"/ or /<component>/", http.StatusNotFound)
		return
	}
	t := p.cfg.Router.Lookup(name)
	w.known = t.Found
	if t.Unavailable != "" {
		w.Header().Set(noInstanceHeader, "1")
		w.Header().Set("Retry-After", "1")
		http.Error(w, "v9: "+t.Unavailable, http.StatusServiceUnavailable)
		return
	}
	if !t.Found {
		http.Error(w, "v9: no component \""+name+"\"", http.StatusNotFound)
		return
	}
	if t.Paused {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "v9: component \""+name+"\" is paused", http.StatusServiceUnavailable)
		return
	}
	maxBody := cmp.Or(t.MaxBody, p.cfg.Bounds.MaxBody)
	if r.ContentLength > maxBody {
		http.Error(w, fmt.Sprintf("v9: request body too large (the limit of %q is %d bytes)", name, maxBody), http.StatusRequestEntityTooLarge)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	size := cmp.Or(t.Concurrency, p.cfg.Bounds.Concurrency) * max(1, len(t.Local)+len(t.Remote))
	release, ok := p.gates.get(name, size).enter(r.Context(), p.gates.wait)
	if !ok {
		w.Header().Set("Retry-After", "1")
		if len(t.Local)+len(t.Remote) == 0 && t.OnDemand != nil {
			// At zero: the held requests are the bound, not the component's load.
			http.Error(w, fmt.Sprintf("v9: %q is starting an instance and already holds %d requests on this node; retry later", name, 2*size), http.StatusServiceUnavailable)
			return
		}
		http.Error(w, fmt.Sprintf("v9: %q has %d requests in flight on this node and as many waiting; retry later", name, size), http.StatusTooManyRequests)
		return
	}
	defer release()
	r.Header.Set(ScriptNameHeader, script)
	hop := r.Header.Get(HopHeader)
	// entering: the request is this node's to count and to choose a version for, unless a
	// member's proxy forwarded it.
	entering := hop == "" || !p.fromPeer(r)
	if hop != "" && entering {
		r.Header.Del(VersionHeader)
	}
	// other is the other version's instances during a canary, and otherVersion its
	// VersionHeader: a fallback when the chosen version has no instance left. The nodes'
	// routing views move at slightly different times (a canary passing, an old instance
	// stopping), so the version a request was sent for may be gone where it lands.
	var other *Canary
	var otherVersion string
	if c := t.Canary; c != nil {
		// The proxy a request enters chooses the version; the one it forwards to serves
		// that version (VersionHeader).
		canary := r.Header.Get(VersionHeader) == "canary"
		if entering {
			stable := len(t.Local) + len(t.Remote)
			canary = len(c.Local)+len(c.Remote) > 0 && (stable == 0 || canaryTurn(p.next(name+"\x00canary"), c.Percent))
			r.Header.Set(VersionHeader, map[bool]string{true: "canary", false: "stable"}[canary])
		}
		other, otherVersion = &Canary{Local: c.Local, Remote: c.Remote}, "canary"
		if canary {
			other, otherVersion = &Canary{Local: t.Local, Remote: t.Remote}, "stable"
			t.Local, t.Remote = c.Local, c.Remote
		}
	}
	if p.cfg.Load != nil && entering {
		defer p.cfg.Load.begin(name).end()
	}
	if hop != "" || (t.InProcess && len(t.Local) > 0) {
		// Forwarded to us, or in-process instances here: serve locally.
		if len(t.Local) == 0 && other != nil {
			t.Local = other.Local // the version asked for has no instance here (any more)
		}
		if len(t.Local) == 0 {
			NoInstance(w, name)
			return
		}
		w.Header().Set(ServedByHeader, p.cfg.NodeID)
		t.Local[p.next(name)%uint64(len(t.Local))].ServeHTTP(w, r)
		return
	}
	n := len(t.Local) + len(t.Remote)
	if n == 0 && t.OnDemand != nil {
		w.Header().Set(ServedByHeader, p.cfg.NodeID)
		t.OnDemand.ServeHTTP(w, r)
		return
	}
	if n == 0 {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "v9: component \""+name+"\" has no running instance", http.StatusServiceUnavailable)
		return
	}
	body := &onceBody{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	first := p.next(name)
	var lastErr error
	now := time.Now()
	for _, k := range p.order(first, len(t.Local), t.Remote, now) {
		if k < len(t.Local) {
			w.Header().Set(ServedByHeader, p.cfg.NodeID)
			t.Local[k].ServeHTTP(w, r)
			return
		}
		addr := t.Remote[k-len(t.Local)]
		err := p.forward(w, r, addr)
		if err == nil {
			p.suspect.Delete(addr)
			return
		}
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("v9: request body too large (the limit of %q is %d bytes)", name, mbe.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		if !errors.Is(err, errNoInstance) {
			// The node did not answer: try it last for a while, so that requests do not
			// each wait on a dead node until the leader marks it down.
			p.suspect.Store(addr, now.Add(suspectFor))
		}
		lastErr = err
		if body.read.Load() {
			break // the body is gone: no retry
		}
	}
	if other != nil && errors.Is(lastErr, errNoInstance) && !body.read.Load() {
		// Every instance of the chosen version is gone: the other version serves it.
		r.Header.Set(VersionHeader, otherVersion)
		if len(other.Local) > 0 {
			in := other.Local[p.next(name)%uint64(len(other.Local))]
			w.Header().Set(ServedByHeader, p.cfg.NodeID)
			in.ServeHTTP(w, r)
			return
		}
		for _, addr := range other.Remote {
			err := p.forward(w, r, addr)
			if err == nil {
				return
			}
			lastErr = err
			if body.read.Load() {
				break
			}
		}
	}
	if t.OnDemand != nil && !body.read.Load() {
		p.cfg.Logger.Debug("no instance answered; serving on demand", "component", name, "err", lastErr)
		w.Header().Set(ServedByHeader, p.cfg.NodeID)
		t.OnDemand.ServeHTTP(w, r)
		return
	}
	if ok, n := p.cfg.Logs.Allow("no instance answered"); ok {
		p.cfg.Logger.Warn("no instance answered", "component", name, "err", lastErr, "suppressed", n)
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "v9: no instance of \""+name+"\" answered", http.StatusBadGateway)
}

// NoInstance answers that this node has no instance of the component (any more): 503 with
// Retry-After, marked so that a forwarding node tries another.
func NoInstance(w http.ResponseWriter, name string) {
	w.Header().Set(noInstanceHeader, "1")
	w.Header().Set("Retry-After", "1")
	http.Error(w, "v9: no instance of \""+name+"\" on this node", http.StatusServiceUnavailable)
}

func (p *Proxy) next(name string) uint64 {
	v, ok := p.rr.Load(name)
	if !ok {
		v, _ = p.rr.LoadOrStore(name, new(atomic.Uint64))
	}
	return v.(*atomic.Uint64).Add(1) - 1
}

// canaryTurn reports whether the k-th request goes to a canary of percent: evenly spread,
// exactly percent of every 100 requests.
func canaryTurn(k uint64, percent uint32) bool {
	k %= 100
	return (k+1)*uint64(percent)/100 > k*uint64(percent)/100
}

// errRetry means the request never reached an instance and may go to another.
var errRetry = errors.New("retry another instance")

// errNoInstance means the node answered but had no instance (any more): retry elsewhere.
var errNoInstance = fmt.Errorf("%w: the node has no instance", errRetry)

// suspectFor is how long a node whose proxy did not answer is tried after the others.
const suspectFor = 3 * time.Second

// order returns the instances to try, in round-robin order from first, with remote nodes
// that recently failed to answer moved to the end.
func (p *Proxy) order(first uint64, local int, remote []string, now time.Time) []int {
	n := local + len(remote)
	out := make([]int, 0, n)
	var later []int
	for i := 0; i < n; i++ {
		k := int((first + uint64(i)) % uint64(n))
		if k >= local {
			if until, ok := p.suspect.Load(remote[k-local]); ok && now.Before(until.(time.Time)) {
				later = append(later, k)
				continue
			}
		}
		out = append(out, k)
	}
	return append(out, later...)
}

// forward sends r to the proxy at addr. It returns an error, having written nothing, when
// the request may be retried elsewhere.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, addr string) error {
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = "http", addr
	out.RequestURI = ""
	out.Header.Set(HopHeader, p.cfg.NodeID)
	removeHopByHop(out.Header)
	resp, err := p.cfg.Transport.RoundTrip(out)
	if err != nil {
		return errors.Join(errRetry, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(noInstanceHeader) != "" {
		return errNoInstance
	}
	removeHopByHop(resp.Header)
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	if resp.ContentLength >= 0 {
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return nil
	}
	// A streamed answer (a warm guest flushing, server-sent events) goes on as it comes,
	// while the client may still be sending its body, and its trailers after it.
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	w.WriteHeader(resp.StatusCode)
	_ = rc.Flush() // the head now: the answer may take its time
	if err := copyFlushing(w, rc, resp.Body); err != nil {
		panic(http.ErrAbortHandler) // cut upstream: the client must not see a proper end
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	return nil
}

// copyFlushing copies a streamed body, flushing after each read.
func copyFlushing(w io.Writer, rc *http.ResponseController, body io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client is gone
			}
			_ = rc.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// headerSize counts a request's header fields and the bytes of their names and values.
func headerSize(h http.Header) (fields, bytes int) {
	for k, vs := range h {
		fields += len(vs)
		for _, v := range vs {
			bytes += len(k) + len(v)
		}
	}
	return fields, bytes
}

func removeHopByHop(h http.Header) {
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		h.Del(k)
	}
}

// onceBody lets a request body be offered to a second instance as long as nobody read from
// it; it ignores Close from a transport that failed to connect.
type onceBody struct {
	r    io.ReadCloser
	read atomic.Bool
}

func (b *onceBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

func (b *onceBody) Close() error { return nil }

// recorder captures the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	known  bool // the name routed to a component this node knows
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Canary is the new version's share of a component's traffic and where it runs.
type Canary struct {
	Percent uint32
	Local   []http.Handler
	Remote  []string
}
