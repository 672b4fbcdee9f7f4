package container

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProxyPassesRequestThrough(t *testing.T) {
	e := newExecutor(t, "node-a")
	spec := testSpec(t, "p-proxy", nil)
	spec.Timeout = 500 * time.Millisecond
	inst := startInstance(t, e, spec)

	req := httptest.NewRequest(http.MethodPost, "http://hello-ctr.localhost/echo?x=1&y=%2F", strings.NewReader("the body"))
	req.RemoteAddr = "192.0.2.7:5555"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	req.Header.Set("X-Forwarded-Proto", "https")
	rec := httptest.NewRecorder()
	inst.ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, want := range []string{
		"method=POST\n",
		"uri=/echo?x=1&y=%2F\n",
		"host=hello-ctr.localhost\n",
		"x-forwarded-for=198.51.100.1, 192.0.2.7\n",
		"x-forwarded-host=hello-ctr.localhost\n",
		"x-forwarded-proto=https\n",
		"the body",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("echo response lacks %q:\n%s", want, body)
		}
	}

	// Spec.Timeout bounds a request: 504.
	start := time.Now()
	if code, body := get(inst, "/sleep?d=5s"); code != http.StatusGatewayTimeout {
		t.Errorf("GET /sleep?d=5s with a 500ms timeout = %d %q, want 504", code, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the timed-out request took %s", d)
	}
	if code, body := get(inst, "/sleep?d=10ms"); code != http.StatusOK {
		t.Errorf("GET /sleep?d=10ms = %d %q", code, body)
	}

	// A request whose client has gone away is not answered.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec = httptest.NewRecorder()
	inst.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	if strings.Contains(rec.Body.String(), "hello") {
		t.Errorf("GET with a cancelled context was answered: %q", rec.Body.String())
	}
}
