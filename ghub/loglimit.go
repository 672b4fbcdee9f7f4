package ghub

import (
	"sync"
	"time"
)

// webhookLogEvery is how often at most the intake logs one kind of refused delivery (a bad
// signature, a delivery for no linked repository): anyone can send those, so a flood of
// them must not fill the node's log.
const webhookLogEvery = 10 * time.Second

// logLimiter lets at most one log line per kind through every interval and counts the lines
// it held back, so the next line can say how many deliveries it stands for.
type logLimiter struct {
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*limitedKind
}

type limitedKind struct {
	last       time.Time
	suppressed int
}

func newLogLimiter(every time.Duration, now func() time.Time) *logLimiter {
	if now == nil {
		now = time.Now
	}
	return &logLimiter{every: every, now: now, kinds: map[string]*limitedKind{}}
}

// allow reports whether a line of kind may be logged now and, if so, how many lines of that
// kind were held back since the last one logged.
func (l *logLimiter) allow(kind string) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.kinds[kind]
	if k == nil {
		k = &limitedKind{}
		l.kinds[kind] = k
	}
	now := l.now()
	if !k.last.IsZero() && now.Sub(k.last) < l.every {
		k.suppressed++
		return false, 0
	}
	k.last, suppressed, k.suppressed = now, k.suppressed, 0
	return true, suppressed
}
