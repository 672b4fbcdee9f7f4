// Package runtimetest is what the tests of the executors (runtime/wasm, runtime/container)
// share: Logs, an instance's log lines. (Each keeps its own start helper: the container
// tests stop instances whose executor a simulated agent restart has closed, so a failed
// Stop there is expected, while the wasm tests fail on one.) The product never imports it.
package runtimetest

import (
	"strings"
	"sync"
	"testing"
)

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
