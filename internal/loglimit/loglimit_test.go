package loglimit

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLimiter: one line per kind per interval, the next line allowed carries the count of
// the ones held back, and every held-back line is counted.
func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	l := New(10*time.Second, c, func() time.Time { return now })
	if ok, n := l.Allow("a"); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.Allow("a"); ok {
			t.Fatalf("line %d within the interval allowed", i)
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another kind held back")
	}
	now = now.Add(10 * time.Second)
	if ok, n := l.Allow("a"); !ok || n != 5 {
		t.Fatalf("after the interval: %v %d, want true 5", ok, n)
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a second line right after allowed")
	}
	if got := testutil.ToFloat64(c); got != 6 {
		t.Fatalf("dropped counter %v, want 6", got)
	}
}

func TestDroppedRegisters(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := NewDropped(reg)
	l := d.Limiter("proxy", time.Hour)
	l.Allow("k")
	l.Allow("k")
	if got := testutil.ToFloat64(d.vec.WithLabelValues("proxy")); got != 1 {
		t.Fatalf("dropped %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "v9_log_lines_dropped_total"); err != nil || n != 1 {
		t.Fatalf("gathered %d series, %v", n, err)
	}
}
