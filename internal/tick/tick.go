// Package tick runs periodic work: the loops of the leader's controllers and of the data
// plane that act every interval until their context ends. It never runs work concurrently
// with itself and never runs it after the context is done.
package tick

import (
	"context"
	"time"
)

// Every calls f every d until ctx is done. The first call comes after d, not at once.
func Every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil {
				return
			}
			f()
		}
	}
}

// Sleep waits d, or less if ctx ends first; it reports whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Pause returns how long a loop that just spent took on one pass over the whole state should
// wait before the next: at least least, and four times took, so that however large the
// state grows (or however slow a loaded machine makes a pass) the loop takes at most a fifth
// of the time, and the writes its passes hold a read lock against keep four fifths.
func Pause(least, took time.Duration) time.Duration {
	return max(least, 4*took)
}
