package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/velocity9/v9/internal/tick"
	"github.com/velocity9/v9/proxy"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
	"github.com/velocity9/v9/spec"
)

// Readiness: a new instance counts as running (and so takes traffic, and lets the
// scheduler stop the version it replaces) only once it answers a real request. A wasm
// instance gets one GET of its health path (default "/") through its own CGI path and
// must answer with a non-5xx; a container has answered on its port when Start returns,
// and with a health path set it must also answer that with a non-5xx, retried while it
// boots.
const (
	// DefaultReadyTimeout is how long a started instance may take to pass its readiness
	// check unless Config.ReadyTimeout says otherwise.
	DefaultReadyTimeout = 30 * time.Second
	readyRetry          = 250 * time.Millisecond
	readyBodyExcerpt    = 200
)

// ready runs the readiness check of a started instance.
func ready(ctx context.Context, rt statev1.Runtime, path string, h http.Handler, timeout time.Duration) error {
	if rt == statev1.Runtime_RUNTIME_CONTAINER && path == "" {
		return nil // the executor waited for its port
	}
	path = spec.HealthPath(&statev1.ComponentSpec{HealthPath: path})
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		status, body, err := probe(ctx, path, h)
		if err == nil && status < 500 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("GET %s answered %d", path, status)
			if body != "" {
				err = fmt.Errorf("%w: %s", err, body)
			}
		}
		// wasm answers the same way every time; a container may still be booting.
		if rt != statev1.Runtime_RUNTIME_CONTAINER || !tick.Sleep(ctx, readyRetry) {
			return fmt.Errorf("%s: %w", sched.ReadinessFailure, err)
		}
	}
}

// probe sends one GET through the instance's handler, as the proxy would with the route
// consumed by the host name.
func probe(ctx context.Context, path string, h http.Handler) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set(proxy.ScriptNameHeader, "")
	req.Header.Set("User-Agent", "v9-readiness")
	w := &probeWriter{header: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.status, strings.TrimSpace(w.body.String()), nil
}

// probeWriter keeps a response's status and the start of its body.
type probeWriter struct {
	header http.Header
	status int
	body   strings.Builder
}

func (w *probeWriter) Header() http.Header { return w.header }

func (w *probeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *probeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if room := readyBodyExcerpt - w.body.Len(); room > 0 {
		w.body.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}
