package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/testkit"
)

// Eventually wakes on a replicated write and on a leadership change, not on its fallback
// poll: with the poll pushed out to an hour, both conditions below are seen at once, long
// before Eventually's own deadline (where its last check would pass them).
func TestEventuallyWakesOnEvents(t *testing.T) {
	c := NewTestCluster(t, 3)
	defer func(d time.Duration) { testkit.Poll = d }(testkit.Poll)
	testkit.Poll = time.Hour

	f, l := c.Follower(t), c.Leader(t)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		time.Sleep(50 * time.Millisecond) // let Eventually find the component missing first
		createComponent(ctx, l, "woken")
	}()
	Eventually(t, 20*time.Second, func() error {
		_, err := f.Store().Component("woken")
		return err
	})
	woken := time.Since(start)

	old := c.Leader(t)
	c.Kill(indexOf(old.ID()))
	Eventually(t, 20*time.Second, func() error {
		for _, n := range c.Live() {
			if n.IsLeader() {
				return nil
			}
		}
		return fmt.Errorf("no new leader")
	})
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("Eventually was not woken by events: the write seen after %v, the new leader after %v", woken, took)
	}
}
