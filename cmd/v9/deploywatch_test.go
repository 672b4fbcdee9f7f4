package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/rpc/client"
)

// TestDeployWatchSaysWhyItStopped: a wait for a rollout that ends before --timeout (an
// interrupt, or the caller's own deadline) says so instead of blaming --timeout; the expiry of
// --timeout itself names it.
func TestDeployWatchSaysWhyItStopped(t *testing.T) {
	d := &deployer{a: &app{}, c: client.New("127.0.0.1:1"), stderr: io.Discard, timeout: time.Minute}
	cases := []struct {
		cause error
		want  string
	}{
		{errors.New("interrupted"), "was still rolling out when the wait stopped: interrupted"},
		{errDeployTimeout, "did not serve within --timeout 1m0s"},
	}
	for _, c := range cases {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(c.cause)
		err := d.watch(ctx, nil, "hello", "d1")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("cause %v: got %v, want %q", c.cause, err, c.want)
		}
	}
}
