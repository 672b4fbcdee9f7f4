package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// LogHandler sends slog records at Level or above to t.Log, each line prefixed (a node's
// id, say), and drops them once the test has ended.
type LogHandler struct {
	T      testing.TB
	Prefix string
	Level  slog.Level
	attrs  []slog.Attr
}

func (h *LogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.Level }

func (h *LogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	defer func() { _ = recover() }() // t.Log after the test ended panics; drop the line
	h.T.Log(b.String())
	return nil
}

func (h *LogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *LogHandler) WithGroup(string) slog.Handler { return h }
