package container

import (
	"bytes"
	"strings"
	"sync"

	"github.com/velocity9/v9/runtime"
)

const (
	// maxLine bounds one log line; a longer one is cut into pieces of this size.
	maxLine = 16 << 10
	// tailLines is how many recent lines of each stream an instance keeps for error messages.
	tailLines = 10
)

// lineWriter is an io.Writer that hands a container's output to a LogFunc line by line and
// keeps the last few lines.
type lineWriter struct {
	stream string
	fn     runtime.LogFunc

	mu      sync.Mutex
	partial []byte
	tail    []string
}

func newLineWriter(stream string, fn runtime.LogFunc) *lineWriter {
	return &lineWriter{stream: stream, fn: fn}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			for len(w.partial) >= maxLine {
				w.emit(w.partial[:maxLine])
				w.partial = append(w.partial[:0], w.partial[maxLine:]...)
			}
			break
		}
		if len(w.partial) > 0 {
			w.partial = append(w.partial, p[:i]...)
			w.emit(w.partial)
			w.partial = w.partial[:0]
		} else {
			w.emit(p[:i])
		}
		p = p[i+1:]
	}
	return n, nil
}

// Flush emits a last line that had no newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.emit(w.partial)
		w.partial = w.partial[:0]
	}
}

func (w *lineWriter) emit(b []byte) {
	for len(b) > maxLine {
		w.emit(b[:maxLine])
		b = b[maxLine:]
	}
	line := strings.TrimSuffix(string(b), "\r")
	if len(w.tail) == tailLines {
		copy(w.tail, w.tail[1:])
		w.tail = w.tail[:tailLines-1]
	}
	w.tail = append(w.tail, line)
	if w.fn != nil {
		w.fn(w.stream, line)
	}
}

// setFn hands the lines written from now on to fn.
func (w *lineWriter) setFn(fn runtime.LogFunc) {
	w.mu.Lock()
	w.fn = fn
	w.mu.Unlock()
}

// Tail returns the last lines written, oldest first.
func (w *lineWriter) Tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.tail...)
}
