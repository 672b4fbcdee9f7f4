package bounds

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// Config is one door's bounds. Zero fields take the defaults of Defaults; a negative count
// or duration means unbounded.
type Config struct {
	MaxConns        int // connections open at once on the listener
	MaxConnsPerAddr int // connections open at once from one client IP address

	ReadHeaderTimeout time.Duration // to read a request's headers
	// BodyTimeout bounds reading a request body in all; BodyIdle bounds the silence between
	// two reads of it. A trickling body is cut off by the first, a stalled one (or an idle
	// client stream) by the second; the read fails and the request ends.
	BodyTimeout time.Duration
	BodyIdle    time.Duration
	IdleTimeout time.Duration // a keep-alive connection between requests
	// MaxHeaderBytes bounds a request's header section (431 past it).
	MaxHeaderBytes int
	// RetryAfter is the Retry-After, in seconds, of the refusals over a bound.
	RetryAfter int
	// HandshakeTimeout (the Raft door) bounds a new connection's TLS handshake, or its first
	// bytes without TLS: a connection silent past it is closed, so it holds no slot.
	HandshakeTimeout time.Duration
}

// Defaults are sized for a 2-core node with 1 GiB to spare: each open connection costs some
// 10-30 KiB (a goroutine and its buffers), so 4,096 connections stay under 128 MiB, well
// inside the default file limit of an agent (raised to the hard limit at start by Go).
func Defaults() Config {
	return Config{
		MaxConns:          4096,
		MaxConnsPerAddr:   512,
		ReadHeaderTimeout: 10 * time.Second,
		BodyTimeout:       60 * time.Second,
		BodyIdle:          20 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		RetryAfter:        1,
		HandshakeTimeout:  10 * time.Second,
	}
}

// WithDefaults fills zero fields from Defaults.
func (c Config) WithDefaults() Config { return fill(c, Defaults()) }

// Listen bounds ln's connections; reject answers those turned away (nil: just close).
func (c Config) Listen(ln net.Listener, reject Reject) *Listener {
	c = c.WithDefaults()
	return NewListener(ln, max(c.MaxConns, 0), max(c.MaxConnsPerAddr, 0), reject)
}

// Server returns an HTTP server (HTTP/1.1, HTTP/2 and h2c) for h with c's timeouts and
// header bound, whose handler reads every request body under c's body deadlines.
func (c Config) Server(h http.Handler) *http.Server {
	c = c.WithDefaults()
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           BodyDeadline(h, c.BodyTimeout, c.BodyIdle),
		Protocols:         &protocols,
		ReadHeaderTimeout: positive(c.ReadHeaderTimeout),
		IdleTimeout:       positive(c.IdleTimeout),
		MaxHeaderBytes:    max(c.MaxHeaderBytes, 0),
	}
}

func positive(d time.Duration) time.Duration { return max(d, 0) }

// BodyDeadline reads each request body of h under deadlines: all of it within total, and
// no more than idle between two reads (each read that returns data moves the idle deadline,
// never past the total). Once the body is read to its end the deadline is lifted, so that a
// long answer (a log tail) is not cut off; a body left unread keeps it, so the server's own
// draining of it after the handler is bounded too. A body read past a deadline fails with
// os.ErrDeadlineExceeded. Non-positive durations disable each bound.
func BodyDeadline(h http.Handler, total, idle time.Duration) http.Handler {
	if total <= 0 && idle <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		b := &deadlineBody{rc: http.NewResponseController(w), body: r.Body, idle: idle}
		if total > 0 {
			b.end = time.Now().Add(total)
		}
		if b.arm() != nil {
			h.ServeHTTP(w, r) // the connection cannot take deadlines (a test recorder)
			return
		}
		r.Body = b
		h.ServeHTTP(w, r)
	})
}

type deadlineBody struct {
	rc     *http.ResponseController
	body   io.ReadCloser
	end    time.Time // zero: no total bound
	idle   time.Duration
	lifted bool
}

// arm sets the read deadline: the sooner of the total's end and idle from now.
func (b *deadlineBody) arm() error {
	d := b.end
	if b.idle > 0 {
		if next := time.Now().Add(b.idle); d.IsZero() || next.Before(d) {
			d = next
		}
	}
	return b.rc.SetReadDeadline(d)
}

func (b *deadlineBody) lift() {
	if !b.lifted {
		b.lifted = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch {
	case err != nil:
		if errors.Is(err, io.EOF) {
			b.lift()
		}
	case n > 0 && !b.lifted && b.idle > 0:
		_ = b.arm()
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }
