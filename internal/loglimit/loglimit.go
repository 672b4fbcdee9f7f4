// Package loglimit holds back log lines that anyone can trigger at request rate (a refused
// webhook, a failed proxy request, a bad token): at most one line per kind per interval
// goes through, the next one says how many it stands for, and every line held back is
// counted in a prometheus counter, so a flood never fills a node's disk. It never logs by
// itself and keeps one entry per kind, so kinds must be a fixed set, never client input.
package loglimit

import (
	stdlog "log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultEvery is the interval callers use unless they have a reason not to.
const DefaultEvery = 10 * time.Second

// Limiter lets at most one line per kind through every interval.
type Limiter struct {
	every   time.Duration
	now     func() time.Time
	dropped prometheus.Counter // may be nil

	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	last       time.Time
	suppressed int
}

// New returns a Limiter; dropped (nil: not counted) counts the lines held back, now (nil:
// time.Now) is its clock.
func New(every time.Duration, dropped prometheus.Counter, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{every: every, now: now, dropped: dropped, kinds: map[string]*kind{}}
}

// Allow reports whether a line of kind may be logged now and, if so, how many lines of that
// kind were held back since the last one logged. A nil Limiter allows everything.
func (l *Limiter) Allow(k string) (ok bool, suppressed int) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.kinds[k]
	if e == nil {
		e = &kind{}
		l.kinds[k] = e
	}
	now := l.now()
	if !e.last.IsZero() && now.Sub(e.last) < l.every {
		e.suppressed++
		if l.dropped != nil {
			l.dropped.Inc()
		}
		return false, 0
	}
	e.last, suppressed, e.suppressed = now, e.suppressed, 0
	return true, suppressed
}

// Dropped is the counter vector of held-back lines, by source ("webhook", "proxy", ...).
type Dropped struct{ vec *prometheus.CounterVec }

// NewDropped registers v9_log_lines_dropped_total with reg (nil: not registered).
func NewDropped(reg prometheus.Registerer) *Dropped {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "v9_log_lines_dropped_total",
		Help: "Log lines held back by rate limiting (lines anyone can trigger at request rate), by source.",
	}, []string{"source"})
	if reg != nil {
		reg.MustRegister(vec)
	}
	return &Dropped{vec: vec}
}

// Limiter returns a Limiter whose held-back lines count under source. A nil Dropped gives
// a Limiter that counts nothing.
func (d *Dropped) Limiter(source string, every time.Duration) *Limiter {
	if d == nil {
		return New(every, nil, nil)
	}
	return New(every, d.vec.WithLabelValues(source), nil)
}

// StdLogger returns a log.Logger (for http.Server.ErrorLog) whose lines go to log as
// warnings with msg, at most one per interval, with the count held back.
func (l *Limiter) StdLogger(log *slog.Logger, msg string) *stdlog.Logger {
	return stdlog.New(stdWriter{l: l, log: log, msg: msg}, "", 0)
}

type stdWriter struct {
	l   *Limiter
	log *slog.Logger
	msg string
}

func (w stdWriter) Write(p []byte) (int, error) {
	if ok, n := w.l.Allow(w.msg); ok {
		w.log.Warn(w.msg, "line", strings.TrimSpace(string(p)), "suppressed", n)
	}
	return len(p), nil
}
