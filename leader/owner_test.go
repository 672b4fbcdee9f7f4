package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// events records controller starts and stops in order.
type events struct {
	mu   sync.Mutex
	list []string
	ch   chan string
}

func newEvents() *events { return &events{ch: make(chan string, 100)} }

func (e *events) add(s string) {
	e.mu.Lock()
	e.list = append(e.list, s)
	e.mu.Unlock()
	e.ch <- s
}

// next waits for the next event.
func (e *events) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-e.ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return ""
	}
}

// recorder is a controller that records its start and, after a slow exit, its stop.
type recorder struct {
	name string
	ev   *events
	exit time.Duration // how long it takes to stop once told to
}

func (r recorder) Name() string { return r.name }
func (r recorder) Run(ctx context.Context) {
	r.ev.add("start " + r.name)
	<-ctx.Done()
	time.Sleep(r.exit) // a controller finishing its last write
	r.ev.add("stop " + r.name)
}

type fakeBarrier struct {
	mu    sync.Mutex
	fails int // the next calls that fail
	calls int
}

func (b *fakeBarrier) Barrier(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.fails > 0 {
		b.fails--
		return errors.New("barrier: leadership lost")
	}
	return nil
}

func startOwner(t *testing.T, b Barrier, cs ...Controller) (*Owner, chan bool, func()) {
	o := NewOwner(quiet(), b)
	o.Register(cs...)
	ch := make(chan bool, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		o.Run(ctx, ch)
		close(done)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return o, ch, stop
}

// TestOwnerStopsEveryControllerBeforeStartingAgain: leadership gained starts every
// controller; lost stops them all and waits for them; a true while leading (lost and
// regained meanwhile) stops the old term before the new one starts; shutdown stops them.
func TestOwnerStopsEveryControllerBeforeStartingAgain(t *testing.T) {
	ev := newEvents()
	o, ch, stop := startOwner(t, &fakeBarrier{},
		recorder{name: "a", ev: ev, exit: 20 * time.Millisecond}, recorder{name: "b", ev: ev})
	want := func(a, b string) {
		t.Helper()
		got := map[string]bool{ev.next(t): true, ev.next(t): true}
		if !got[a] || !got[b] {
			t.Fatalf("events %v, want %q and %q", got, a, b)
		}
	}
	ch <- true
	want("start a", "start b")
	if !o.Leading() {
		t.Fatal("not leading after the controllers started")
	}
	ch <- false
	want("stop a", "stop b")
	// Leading turns false only once both stopped; a stop is waited for, never overlapped.
	deadline := time.Now().Add(5 * time.Second)
	for o.Leading() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if o.Leading() {
		t.Fatal("still leading after leadership was lost")
	}
	ch <- true
	want("start a", "start b")
	ch <- true // lost and regained: the old term ends first
	want("stop a", "stop b")
	want("start a", "start b")
	stop()
	want("stop a", "stop b")
	if o.Leading() {
		t.Fatal("leading after shutdown")
	}
}

// TestOwnerBarrierBeforeControllers: no controller starts before a barrier succeeds; a
// barrier that fails is retried while leading, and abandoned when leadership is lost.
func TestOwnerBarrierBeforeControllers(t *testing.T) {
	ev := newEvents()
	b := &fakeBarrier{fails: 2}
	_, ch, _ := startOwner(t, b, recorder{name: "a", ev: ev})
	ch <- true
	if e := ev.next(t); e != "start a" {
		t.Fatalf("event %q", e)
	}
	b.mu.Lock()
	calls := b.calls
	b.fails = 1000
	b.mu.Unlock()
	if calls != 3 {
		t.Fatalf("%d barriers, want 3 (two failed)", calls)
	}
	ch <- false
	if e := ev.next(t); e != "stop a" {
		t.Fatalf("event %q", e)
	}
	ch <- true // the barrier keeps failing
	ch2 := time.After(300 * time.Millisecond)
	select {
	case e := <-ev.ch:
		t.Fatalf("controller event %q without a barrier", e)
	case <-ch2:
	}
	ch <- false // leadership lost while the barrier fails: nothing starts
	b.mu.Lock()
	b.fails = 0
	b.mu.Unlock()
	select {
	case e := <-ev.ch:
		t.Fatalf("controller event %q after leadership was lost", e)
	case <-time.After(300 * time.Millisecond):
	}
	ch <- true
	if e := ev.next(t); e != "start a" {
		t.Fatalf("event %q", e)
	}
}

// TestOwnerHandoverStopsControllersBeforeTransfer: a handover stops every controller before
// the transfer runs; a failed transfer starts them again (still leading), a done one not.
func TestOwnerHandoverStopsControllersBeforeTransfer(t *testing.T) {
	ev := newEvents()
	o, ch, _ := startOwner(t, &fakeBarrier{}, recorder{name: "a", ev: ev, exit: 20 * time.Millisecond})
	ch <- true
	if e := ev.next(t); e != "start a" {
		t.Fatalf("event %q", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failed := errors.New("transfer timed out")
	for _, result := range []error{failed, nil} {
		err := o.Handover(ctx, func() error {
			if o.Leading() {
				t.Error("transfer runs while the controllers run")
			}
			ev.add("transfer")
			return result
		})
		if err != result {
			t.Fatalf("handover: %v, want %v", err, result)
		}
		want := []string{"stop a", "transfer"}
		if result != nil {
			want = append(want, "start a")
		}
		for _, w := range want {
			if e := ev.next(t); e != w {
				t.Fatalf("event %q, want %q (transfer result %v)", e, w, result)
			}
		}
	}
	ch <- false // leadership moved: nothing left to stop or start
	select {
	case e := <-ev.ch:
		t.Fatalf("controller event %q after a done handover", e)
	case <-time.After(300 * time.Millisecond):
	}
}

func ExampleControllerFunc() {
	c := ControllerFunc("poll", func(ctx context.Context) { <-ctx.Done() })
	fmt.Println(c.Name())
	// Output: poll
}
