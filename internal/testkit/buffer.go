package testkit

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// Buffer is a bytes.Buffer that one goroutine may write while another reads it: a
// process's output or a logger's, read while it runs.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines returns the lines written so far that contain s.
func (b *Buffer) Lines(s string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// Logs collects an instance's log lines (a runtime.Spec's Log), each as "stream: line",
// from any goroutine.
type Logs struct {
	mu    sync.Mutex
	lines []string
}

// Log records one line of stream.
func (l *Logs) Log(stream, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, stream+": "+line)
}

// String is the lines so far, one per line.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Contains says whether the lines so far, joined by newlines, contain s.
func (l *Logs) Contains(s string) bool { return strings.Contains(l.String(), s) }

// WantContains fails the test (and goes on) unless the lines so far contain s.
func (l *Logs) WantContains(t testing.TB, s string) {
	t.Helper()
	if all := l.String(); !strings.Contains(all, s) {
		t.Errorf("logs lack %q; got:\n%s", s, all)
	}
}
