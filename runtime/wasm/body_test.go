package wasm

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReadBodyGrowsWithWhatArrives: a request that declares 10 MiB and sends one byte
// costs a small buffer, not the declared length (the slow-body flood of issue 14 grew an
// agent by gigabytes); a body over the limit is refused however it is announced.
func TestReadBodyGrowsWithWhatArrives(t *testing.T) {
	c := new(call)
	req := httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader("x"), errReader{}))
	req.ContentLength = 10 << 20
	if err := c.readBody(req, 10<<20); err == nil || errors.Is(err, errBodyTooLarge) {
		t.Fatalf("cut-off body: %v", err)
	}
	if cap(c.body) > 64<<10 {
		t.Fatalf("one byte received, %d reserved", cap(c.body))
	}

	for _, tc := range []struct {
		name   string
		body   string
		length int64
		err    error
	}{
		{"within", "0123456789", 10, nil},
		{"declared over", "0123456789x", 11, errBodyTooLarge},
		{"streamed over", "0123456789x", -1, errBodyTooLarge},
	} {
		c.body = c.body[:0]
		req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		req.ContentLength = tc.length
		if err := c.readBody(req, 10); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}

	// The proxy's MaxBytesReader tripping is too large as well.
	c.body = c.body[:0]
	rec := httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/", strings.NewReader("0123456789"))
	req.Body = http.MaxBytesReader(rec, req.Body, 4)
	if err := c.readBody(req, 100); !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("MaxBytesReader: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
