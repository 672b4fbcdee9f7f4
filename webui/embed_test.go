package webui

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		rd = zr
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerServesBuiltConsole(t *testing.T) {
	js := strings.Repeat("console.log(1);", 200)
	h := newHandler(fstest.MapFS{
		"index.html":         {Data: []byte("<!doctype html><title>v9</title>")},
		"assets/app-abc.js":  {Data: []byte(js)},
		"assets/app-abc.css": {Data: []byte("body{}")},
	})

	for _, route := range []string{"/", "/components/hello", "/nodes", "/index.html"} {
		r := get(t, h, route, nil)
		if r.StatusCode != 200 || !strings.Contains(body(t, r), "<title>v9</title>") {
			t.Fatalf("%s: status %d, want index.html", route, r.StatusCode)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Fatalf("%s: Cache-Control %q, want no-cache", route, cc)
		}
	}

	r := get(t, h, "/assets/app-abc.js", map[string]string{"Accept-Encoding": "gzip, br"})
	if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("asset: status %d, encoding %q", r.StatusCode, r.Header.Get("Content-Encoding"))
	}
	if !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("asset Cache-Control %q, want immutable", r.Header.Get("Cache-Control"))
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("asset Content-Type %q", r.Header.Get("Content-Type"))
	}
	if got := body(t, r); got != js {
		t.Fatalf("gzipped asset differs: %d bytes, want %d", len(got), len(js))
	}

	if r := get(t, h, "/assets/app-abc.js", map[string]string{"Accept-Encoding": "gzip;q=0"}); r.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip sent to a client that refused it")
	}
	if r := get(t, h, "/assets/old-123.js", nil); r.StatusCode != 404 {
		t.Fatalf("missing asset: status %d, want 404", r.StatusCode)
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: status %d, want 405", rec.Code)
	}
}

// The build's precompressed NAME.gz is what goes out, not a compression made on the request.
func TestHandlerServesPrecompressedAsset(t *testing.T) {
	js := strings.Repeat("console.log(2);", 200)
	var gz strings.Builder
	zw := gzip.NewWriter(&gz)
	zw.Header.Comment = "precompressed"
	_, _ = zw.Write([]byte(js))
	_ = zw.Close()
	h := newHandler(fstest.MapFS{
		"index.html":           {Data: []byte("<!doctype html>")},
		"assets/app-abc.js":    {Data: []byte(js)},
		"assets/app-abc.js.gz": {Data: []byte(gz.String())},
	})
	r := get(t, h, "/assets/app-abc.js", map[string]string{"Accept-Encoding": "gzip"})
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if zr.Comment != "precompressed" || string(b) != js {
		t.Fatalf("served a gzip with comment %q and %d bytes, want the precompressed file of %d bytes", zr.Comment, len(b), len(js))
	}
	if r := get(t, h, "/assets/app-abc.js", nil); body(t, r) != js || r.Header.Get("Content-Encoding") != "" {
		t.Fatal("a client without gzip did not get the plain file")
	}
}

func TestHandlerWithoutBuildSaysHowToBuild(t *testing.T) {
	h := newHandler(fstest.MapFS{".gitkeep": {}})
	r := get(t, h, "/components", nil)
	if r.StatusCode != 200 || !strings.Contains(body(t, r), "make console") {
		t.Fatalf("status %d: want the page that says to run make console", r.StatusCode)
	}
}
