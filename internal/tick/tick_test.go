package tick

import (
	"context"
	"testing"
	"time"
)

func TestEveryRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, time.Millisecond, func() {
			calls++
			if calls == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context was cancelled")
	}
	if calls != 3 {
		t.Fatalf("f ran %d times, want 3 (never after cancel)", calls)
	}
}

func TestPauseGrowsWithTheWork(t *testing.T) {
	if got := Pause(20*time.Millisecond, time.Millisecond); got != 20*time.Millisecond {
		t.Fatalf("quick pass: pause %v, want the least 20ms", got)
	}
	if got := Pause(20*time.Millisecond, 30*time.Millisecond); got != 120*time.Millisecond {
		t.Fatalf("slow pass: pause %v, want 4 × 30ms", got)
	}
}
