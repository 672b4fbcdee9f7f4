// Package logring keeps the recent log lines of each component on one node in a bounded
// ring, and fans new lines out to followers. It never blocks a writer: a follower that falls
// behind loses lines and is told how many.
package logring

import (
	"sync"
	"time"
)

// Line is one log line.
type Line struct {
	Time      time.Time
	Seq       uint64 // increasing on this node
	Component string
	Instance  string // placement id, or "proxy"
	Stream    string // "stdout", "stderr", "access", "system"
	Text      string
}

// MaxLineBytes bounds one line; longer lines are cut.
const MaxLineBytes = 16 << 10

// Ring holds up to size lines per component.
type Ring struct {
	size int
	now  func() time.Time

	mu   sync.Mutex
	seq  uint64
	bufs map[string]*buffer
	subs map[string]map[*Sub]struct{}
}

type buffer struct {
	lines []Line
	next  int // index of the oldest line once full
	full  bool
}

// Sub is a follower of one component's lines.
type Sub struct {
	C       chan Line
	dropped uint64
	r       *Ring
	comp    string
}

// New returns a ring keeping size lines per component.
func New(size int) *Ring {
	return &Ring{size: size, now: time.Now, bufs: map[string]*buffer{}, subs: map[string]map[*Sub]struct{}{}}
}

// Append adds a line.
func (r *Ring) Append(component, instance, stream, text string) {
	if len(text) > MaxLineBytes {
		text = text[:MaxLineBytes]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	l := Line{Time: r.now(), Seq: r.seq, Component: component, Instance: instance, Stream: stream, Text: text}
	b := r.bufs[component]
	if b == nil {
		b = &buffer{}
		r.bufs[component] = b
	}
	if !b.full {
		b.lines = append(b.lines, l)
		b.full = len(b.lines) == r.size
	} else {
		b.lines[b.next] = l
		b.next = (b.next + 1) % r.size
	}
	for s := range r.subs[component] {
		select {
		case s.C <- l:
		default:
			s.dropped++
		}
	}
}

// Recent returns up to n of the newest lines of a component, oldest first.
func (r *Ring) Recent(component string, n int) []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bufs[component]
	if b == nil || n <= 0 {
		return nil
	}
	all := append(append([]Line{}, b.lines[b.next:]...), b.lines[:b.next]...)
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// Subscribe follows new lines of a component. Close the Sub when done.
func (r *Ring) Subscribe(component string) *Sub {
	s := &Sub{C: make(chan Line, 1024), r: r, comp: component}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subs[component] == nil {
		r.subs[component] = map[*Sub]struct{}{}
	}
	r.subs[component][s] = struct{}{}
	return s
}

// Dropped is how many lines this follower lost by falling behind.
func (s *Sub) Dropped() uint64 {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	return s.dropped
}

// Close stops following.
func (s *Sub) Close() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	delete(s.r.subs[s.comp], s)
}

// Forget drops a deleted component's lines.
func (r *Ring) Forget(component string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.bufs, component)
}
