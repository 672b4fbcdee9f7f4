package replica

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"connectrpc.com/connect"
)

// TestForwardErrorWording: a forwarded write that fails after it may have reached the
// leader says "may or may not have been applied", never a bare canceled or EOF; a refused
// dial stays retryable (certainly not applied); the leader's own answers pass unchanged.
func TestForwardErrorWording(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	reset := connect.NewError(connect.CodeUnavailable, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
	canceled := connect.NewError(connect.CodeCanceled, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
	dial := connect.NewError(connect.CodeUnavailable, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	notFound := connect.NewWireError(connect.CodeNotFound, errors.New(`component "a": not found`))
	leaderCanceled := connect.NewWireError(connect.CodeCanceled, errors.New("context canceled"))

	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		code connect.Code
		want string
	}{
		{"connection reset", live, reset, connect.CodeUnavailable, MaybeApplied},
		{"canceled by a lost connection", live, canceled, connect.CodeUnavailable, MaybeApplied},
		{"own deadline", done, canceled, connect.CodeDeadlineExceeded, MaybeApplied},
		{"leader canceled", live, leaderCanceled, connect.CodeUnavailable, MaybeApplied},
		{"leader's domain answer", live, notFound, connect.CodeNotFound, "not found"},
	} {
		got := ForwardError(c.ctx, c.err)
		if connect.CodeOf(got) != c.code || !strings.Contains(got.Error(), c.want) {
			t.Errorf("%s: forwardError = %v (%v), want %v containing %q", c.name, got, connect.CodeOf(got), c.code, c.want)
		}
		if Retryable(got) {
			t.Errorf("%s: %v is retryable, but the write may have been applied", c.name, got)
		}
	}
	if got := ForwardError(live, dial); !Retryable(got) {
		t.Errorf("refused dial: forwardError = %v, want it retryable (nothing was sent)", got)
	}
}
