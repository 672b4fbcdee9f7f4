package wasm

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// A warm guest's stdio streams: stdin is the request head and then the body as the client
// sends it, stdout is forwarded to the client as the guest writes once it opens a streamed
// response. While the guest waits on the client, in a read of its stdin or a write of its
// stdout, it gives up its place in the running bound (run.go), so that a slow client or a
// slow upload holds no CPU place; it takes one again before guest code resumes.

// aLongTimeAgo is a deadline in the past: set on a connection, it ends a blocked read or write.
var aLongTimeAgo = time.Unix(1, 0)

// runHold is a warm request's place in the running bound.
type runHold struct {
	b    *bound
	ctx  context.Context
	held bool
}

// enter takes a place unless one is held, waiting until ctx ends.
func (h *runHold) enter() error {
	if h.held || h.b == nil {
		return nil
	}
	if err := h.b.enter(h.ctx); err != nil {
		return err
	}
	h.held = true
	return nil
}

// leave gives the place back, if one is held.
func (h *runHold) leave() {
	if h.held {
		h.held = false
		h.b.leave()
	}
}

// warmIO is a warm instance's stdin and stdout, pointed at one request at a time.
type warmIO struct {
	hold   runHold
	stdin  warmStdin
	stdout warmStdout
	w      http.ResponseWriter
	rc     *http.ResponseController // made on first use
}

func (o *warmIO) controller() *http.ResponseController {
	if o.rc == nil {
		o.rc = http.NewResponseController(o.w)
	}
	return o.rc
}

// cutAtDone makes a wait on the client's connection, a body read (read) or a write, end
// when ctx does, by a deadline in the past; stop, called once the wait is over, undoes it.
// Once stop has returned the connection is never touched again on this account: after the
// request ends, its ResponseController must not be used (HTTP/2's would crash).
func (o *warmIO) cutAtDone(ctx context.Context, read bool) (stop func()) {
	c := &ioCut{rc: o.controller(), read: read}
	stopFunc := context.AfterFunc(ctx, c.cut)
	return func() {
		if !stopFunc() {
			c.mu.Lock()
			c.over = true
			c.mu.Unlock()
		}
	}
}

// ioCut is one wait cutAtDone may cut.
type ioCut struct {
	mu   sync.Mutex
	over bool
	rc   *http.ResponseController
	read bool
}

func (c *ioCut) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.over:
	case c.read:
		_ = c.rc.SetReadDeadline(aLongTimeAgo)
	default:
		_ = c.rc.SetWriteDeadline(aLongTimeAgo)
	}
}

// begin points the streams at a request: head is its framed head (appendRequest).
func (o *warmIO) begin(ctx context.Context, w http.ResponseWriter, r *http.Request, head []byte, maxBody int64, out *limitedBuffer) {
	o.w, o.rc = w, nil
	o.stdin = warmStdin{io: o, ctx: ctx, head: head, limit: maxBody}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		o.stdin.body = r.Body
	}
	o.stdout.io, o.stdout.ctx, o.stdout.out = o, ctx, out
	o.stdout.fresh, o.stdout.streaming, o.stdout.err = true, false, nil
	o.stdout.headSent, o.stdout.noBody, o.stdout.sent = false, false, 0
	o.stdout.p.reset()
}

// end detaches the streams from the request.
func (o *warmIO) end() {
	o.hold.leave()
	o.stdin = warmStdin{}
	o.stdout.io, o.stdout.ctx = nil, nil
	o.w, o.rc = nil, nil
}

// warmStdin reads the request head, then the body, bounded by limit, then EOF.
type warmStdin struct {
	io    *warmIO
	ctx   context.Context
	head  []byte
	off   int
	body  io.Reader // nil: no body, or read to its end
	limit int64
	n     int64
	err   error // why the body could not be read, if v9 answers for it (errBodyTooLarge, a deadline)
}

func (s *warmStdin) Read(p []byte) (int, error) {
	if s.off < len(s.head) {
		n := copy(p, s.head[s.off:])
		s.off += n
		return n, nil
	}
	if s.err != nil {
		return 0, s.err
	}
	if s.body == nil {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p = p[:min(int64(len(p)), s.limit-s.n+1)]
	s.io.hold.leave()
	stop := s.io.cutAtDone(s.ctx, true)
	n, err := s.body.Read(p)
	stop()
	s.n += int64(n)
	var mbe *http.MaxBytesError
	switch {
	case s.n > s.limit, errors.As(err, &mbe):
		s.err = errBodyTooLarge
	case err == io.EOF:
		s.body = nil
	case err != nil:
		s.err = err
	}
	if herr := s.io.hold.enter(); herr != nil {
		return 0, herr
	}
	if s.err != nil {
		return 0, s.err
	}
	return n, err
}

// warmStdout collects a buffered response in out, as for WAGI, or forwards a streamed one
// (opened by streamMarker in the guest's first write) to the client as it comes.
type warmStdout struct {
	io        *warmIO
	ctx       context.Context
	out       *limitedBuffer // the buffered response, and the bound on all output
	fresh     bool           // nothing written yet for this request
	streaming bool
	headSent  bool
	noBody    bool  // the status allows no body: the guest's is dropped
	sent      int   // bytes of streamed output
	err       error // the stream failed: past the limit, a broken format, the client gone
	p         chunkParser
}

func (s *warmStdout) Write(p []byte) (int, error) {
	n := len(p)
	if !s.streaming {
		if !s.fresh || len(p) < len(streamMarker) || string(p[:len(streamMarker)]) != streamMarker {
			s.fresh = false
			return s.out.Write(p)
		}
		s.streaming = true
		s.p.onHead, s.p.onData = s.writeHead, s.writeData
		p = p[len(streamMarker):]
	}
	s.fresh = false
	if s.err != nil {
		return 0, s.err
	}
	if s.sent+len(p) > s.out.limit {
		s.out.overflow = true
		if s.out.onOverflow != nil {
			s.out.onOverflow()
		}
		s.err = errResponseTooLarge
		return 0, s.err
	}
	s.sent += len(p)
	s.io.hold.leave()
	stop := s.io.cutAtDone(s.ctx, false)
	err := s.p.feed(p)
	if err == nil && s.headSent {
		if ferr := s.io.controller().Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
			err = ferr
		}
	}
	stop()
	if herr := s.io.hold.enter(); herr != nil && err == nil {
		err = herr
	}
	if err != nil {
		s.err = err
		return 0, err
	}
	return n, nil
}

// writeHead sends the streamed response's status and headers.
func (s *warmStdout) writeHead(head []byte) error {
	res, err := parseCGI(head)
	if err != nil {
		return err
	}
	w := s.io.w
	h := w.Header()
	for k, vs := range res.header {
		h[k] = vs
	}
	// The guest may read the rest of the request body after its response has begun.
	_ = s.io.controller().EnableFullDuplex()
	w.WriteHeader(res.status)
	s.headSent = true
	s.noBody = !bodyAllowed(res.status)
	return nil
}

// writeData sends a piece of the streamed body.
func (s *warmStdout) writeData(data []byte) error {
	if s.noBody {
		return nil
	}
	_, err := s.io.w.Write(data)
	return err
}
