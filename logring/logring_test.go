package logring

import (
	"fmt"
	"testing"
)

func TestRingKeepsNewestAndFollows(t *testing.T) {
	r := New(3)
	s := r.Subscribe("a")
	defer s.Close()
	for i := 0; i < 5; i++ {
		r.Append("a", "p1", "stdout", fmt.Sprint(i))
	}
	r.Append("b", "p2", "stdout", "other")
	got := r.Recent("a", 10)
	if len(got) != 3 || got[0].Text != "2" || got[2].Text != "4" {
		t.Fatalf("recent: %+v", got)
	}
	if got := r.Recent("a", 2); len(got) != 2 || got[0].Text != "3" {
		t.Fatalf("recent 2: %+v", got)
	}
	for i := 0; i < 5; i++ {
		if l := <-s.C; l.Text != fmt.Sprint(i) || l.Component != "a" {
			t.Fatalf("followed line %d: %+v", i, l)
		}
	}
	select {
	case l := <-s.C:
		t.Fatalf("line of another component delivered: %+v", l)
	default:
	}
}

func TestSlowFollowerNeverBlocksWriter(t *testing.T) {
	r := New(10)
	s := r.Subscribe("a")
	for i := 0; i < 2000; i++ {
		r.Append("a", "p", "stdout", "x")
	}
	if s.Dropped() != 2000-uint64(cap(s.C)) {
		t.Fatalf("dropped %d", s.Dropped())
	}
	s.Close()
	r.Append("a", "p", "stdout", "after close")
}
