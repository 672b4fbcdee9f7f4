package auth

import (
	"context"
	"sync"
	"time"
)

// CatchUp shares the replica catch-ups that unknown credentials ask for. Before a token, a
// session or a join token is declared unknown, the node catches up with the leader (it may
// have been made a moment ago on another node); a catch-up is a read barrier, a Raft entry
// on the leader. Without sharing, anyone could make the leader write one entry per request
// by sending made-up tokens. With it, a caller waits for a catch-up that began after it
// asked (which sees every write committed before it asked), and catch-ups begin at most
// once per MinGap, however many callers ask: an unknown token costs the cluster nothing more
// under a flood, and a real one made a moment ago waits at most MinGap more.
type CatchUp struct {
	// Barrier brings the local replica up to date with the leader.
	Barrier func(ctx context.Context) error
	// MinGap is the least time between the starts of two catch-ups.
	MinGap time.Duration
	// Timeout bounds one catch-up, whoever waits for it (default 10 s).
	Timeout time.Duration

	mu  sync.Mutex
	cur *catchUpRound // the last catch-up begun
}

// CatchUpGap is the MinGap a node gives its CatchUp: at most 20 catch-ups a second.
const CatchUpGap = 50 * time.Millisecond

type catchUpRound struct {
	start time.Time
	done  chan struct{}
	err   error
}

// Do returns once a catch-up that began after the call has ended, with its error.
func (c *CatchUp) Do(ctx context.Context) error {
	asked := time.Now()
	for {
		c.mu.Lock()
		r := c.cur
		switch {
		case r != nil && !r.start.Before(asked):
			c.mu.Unlock()
			return r.wait(ctx) // begun since we asked: it covers us
		case r != nil && !r.ended():
			c.mu.Unlock()
			if err := r.wait(ctx); ctx.Err() != nil {
				return err
			}
			continue // it began before we asked; the next one is ours
		}
		if r != nil {
			if gap := c.MinGap - time.Since(r.start); gap > 0 {
				c.mu.Unlock()
				t := time.NewTimer(gap)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
				continue
			}
		}
		r = &catchUpRound{start: time.Now(), done: make(chan struct{})}
		c.cur = r
		c.mu.Unlock()
		go c.run(r) // on its own: the caller who began it may give up first
		return r.wait(ctx)
	}
}

func (c *CatchUp) run(r *catchUpRound) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r.err = c.Barrier(ctx)
	close(r.done)
}

func (r *catchUpRound) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *catchUpRound) ended() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}
