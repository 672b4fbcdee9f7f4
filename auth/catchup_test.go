package auth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockingBarrier counts catch-ups and holds each until released.
type blockingBarrier struct {
	calls   atomic.Int32
	mu      sync.Mutex
	starts  []time.Time
	release chan struct{}
}

func (b *blockingBarrier) barrier(ctx context.Context) error {
	b.calls.Add(1)
	b.mu.Lock()
	b.starts = append(b.starts, time.Now())
	b.mu.Unlock()
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A flood of callers with unknown tokens shares catch-ups: a hundred callers asking while
// one is under way cost two (the one under way began before some of them asked), three if
// the scheduler holds one back past the second.
func TestCatchUpIsSharedByConcurrentCallers(t *testing.T) {
	b := &blockingBarrier{release: make(chan struct{})}
	c := &CatchUp{Barrier: b.barrier, MinGap: 100 * time.Millisecond} // stragglers share one more
	var wg, started sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			errs <- c.Do(context.Background())
		}()
	}
	started.Wait()
	for b.calls.Load() == 0 { // the first has begun
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the callers reach Do while the first is under way
	close(b.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := b.calls.Load(); n > 3 {
		t.Fatalf("%d catch-ups for 100 callers, want at most 3", n)
	}
}

// A caller never makes do with a catch-up that began before it asked: that one may have
// missed the token it looks for.
func TestCatchUpWaitsForOneBegunAfterItAsked(t *testing.T) {
	b := &blockingBarrier{release: make(chan struct{})}
	c := &CatchUp{Barrier: b.barrier}
	first := make(chan error, 1)
	go func() { first <- c.Do(context.Background()) }()
	for b.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() { second <- c.Do(context.Background()) }()
	time.Sleep(10 * time.Millisecond) // let the second caller see the first round under way
	close(b.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if n := b.calls.Load(); n != 2 {
		t.Fatalf("%d catch-ups, want 2: the second caller asked after the first began", n)
	}
}

// Catch-ups begin at least MinGap apart, and a caller that gives up gets its context's
// error while the catch-up goes on for the others.
func TestCatchUpMinGapAndCancel(t *testing.T) {
	b := &blockingBarrier{release: make(chan struct{})}
	close(b.release)
	c := &CatchUp{Barrier: b.barrier, MinGap: 30 * time.Millisecond}
	for range 4 {
		if err := c.Do(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(b.starts); i++ {
		if gap := b.starts[i].Sub(b.starts[i-1]); gap < c.MinGap {
			t.Fatalf("catch-ups %d and %d began %s apart, want at least %s", i-1, i, gap, c.MinGap)
		}
	}
	slow := &blockingBarrier{release: make(chan struct{})}
	c = &CatchUp{Barrier: slow.barrier}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Do(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that gave up got %v", err)
	}
	close(slow.release)
}
