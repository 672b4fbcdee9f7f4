package wasm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/runtimetest"
)

// startStream serves examples/stream-http warm, with a pool of size instances, over HTTP.
func startStream(t *testing.T, ex *Executor, size int, mod func(*runtime.Spec)) (*httptest.Server, *instance, *runtimetest.Logs) {
	t.Helper()
	inst, sink := startGuest(t, ex, "streamhttp", func(s *runtime.Spec) {
		s.Wasm.ABI = ABIHTTP
		s.Concurrency = size
		if mod != nil {
			mod(s)
		}
	})
	srv := httptest.NewServer(inst.(*instance))
	t.Cleanup(srv.Close)
	return srv, inst.(*instance), sink
}

func streamCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// One warm instance streams, in turn: both ways at once, flushed events, trailers.
func TestWarmStream(t *testing.T) {
	srv, _, _ := startStream(t, sharedExecutor(t), 1, nil)
	t.Run("full-duplex", func(t *testing.T) { testStreamFullDuplex(t, srv) })
	t.Run("ticks", func(t *testing.T) { testStreamTicks(t, srv) })
	t.Run("trailers", func(t *testing.T) { testStreamTrailers(t, srv) })
}

// The response is streamed as the handler flushes and the request body as the client sends
// it: each line the client sends is answered before the client sends the next, so the
// handler is still running when the client reads each answer.
func testStreamFullDuplex(t *testing.T, srv *httptest.Server) {
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(streamCtx(t), http.MethodPost, srv.URL+"/s/echo", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != -1 {
		t.Fatalf("status %d, length %d; want 200, streamed", resp.StatusCode, resp.ContentLength)
	}
	lines := bufio.NewReader(resp.Body)
	for _, word := range []string{"one", "two", "three"} {
		if _, err := io.WriteString(pw, word+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := lines.ReadString('\n')
		if err != nil || line != "got "+word+"\n" {
			t.Fatalf("answer to %q: %q %v", word, line, err)
		}
	}
	pw.Close()
	if rest, err := io.ReadAll(lines); err != nil || len(rest) != 0 {
		t.Fatalf("after the body ended: %q %v", rest, err)
	}
}

// A handler that flushes three events: each reaches the client as its own chunk.
func testStreamTicks(t *testing.T, srv *httptest.Server) {
	resp, err := http.Get(srv.URL + "/s/ticks?n=3")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "data: tick 0\n\ndata: tick 1\n\ndata: tick 2\n\n"
	if err != nil || string(body) != want || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%q %v %v; want %q", body, err, resp.Header, want)
	}
}

// An upload of many buffers is read piece by piece and hashed; a handler that ignores its
// body leaves nothing of it to the next request on the same instance; a body past the
// limit is answered 413, declared or not.
func TestWarmStreamUpload(t *testing.T) {
	ex := newExecutor(t, Config{MaxRequestBytes: 8 << 20})
	srv, _, _ := startStream(t, ex, 1, nil)
	big := make([]byte, 6<<20)
	rand.Read(big)
	post := func(path string, body io.Reader) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sum := sha256.Sum256(big)
	// io.MultiReader hides the length: the body is sent chunked.
	code, got := post("/s/hash", io.MultiReader(bytes.NewReader(big)))
	var n, reads int
	var hash string
	if _, err := fmt.Sscan(got, &n, &hash, &reads); err != nil || code != 200 || n != len(big) || hash != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash: %d %q", code, got)
	}
	if reads < 2 {
		t.Fatalf("the handler read %d MiB in %d reads", len(big)>>20, reads)
	}
	if code, got := post("/s/ignore", bytes.NewReader(big)); code != 200 || got != "ignored\n" {
		t.Fatalf("ignore: %d %q", code, got)
	}
	small := sha256.Sum256([]byte("abc"))
	if code, got := post("/s/hash", strings.NewReader("abc")); code != 200 || got != "3 "+hex.EncodeToString(small[:])+" 1\n" {
		t.Fatalf("after a body left unread: %d %q", code, got)
	}
	tooBig := make([]byte, 9<<20)
	if code, _ := post("/s/hash", bytes.NewReader(tooBig)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared too large: %d", code)
	}
	if code, _ := post("/s/hash", io.MultiReader(bytes.NewReader(tooBig))); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked too large: %d", code)
	}
	if code, got := post("/s/hash", strings.NewReader("abc")); code != 200 || !strings.HasPrefix(got, "3 ") {
		t.Fatalf("after a refused body: %d %q", code, got)
	}
}

// Trailers reach a Go client, declared ("Trailer: X-Sum") or set with http.TrailerPrefix,
// from a streamed response and from one the handler never flushed.
func testStreamTrailers(t *testing.T, srv *httptest.Server) {
	sum := sha256.Sum256([]byte("part 0\npart 1\npart 2\n"))
	for _, q := range []string{"", "?flush=1"} {
		resp, err := http.Get(srv.URL + "/s/trailer" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "part 0\npart 1\npart 2\n" {
			t.Fatalf("%s: body %q %v", q, body, err)
		}
		if got := resp.Trailer.Get("X-Sum"); got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: trailer X-Sum %q (trailers %v, header %v)", q, got, resp.Trailer, resp.Header)
		}
		if got := resp.Trailer.Get("X-Late"); got != "late" {
			t.Errorf("%s: trailer X-Late %q", q, got)
		}
		if resp.Header.Get("X-Sum") != "" {
			t.Errorf("%s: the trailer was sent as a header too", q)
		}
	}
}

// A client that stops reading a large streamed answer blocks its guest in a write; the
// guest gives up its place in the running bound meanwhile (a bound of one here), so a
// request on the pool's other instance is served.
func TestWarmStreamSlowClientFreesBound(t *testing.T) {
	ex := newExecutor(t, Config{MaxRunning: 1, MaxResponseBytes: 512 << 20})
	srv, _, _ := startStream(t, ex, 2, func(s *runtime.Spec) { s.Timeout = 2 * time.Minute })
	ctx := streamCtx(t)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/s/big?kib=262144", nil)
	slow, err := http.DefaultClient.Do(req) // 256 MiB, far more than the sockets buffer
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	if _, err := io.ReadFull(slow.Body, make([]byte, 1<<10)); err != nil {
		t.Fatal(err)
	}
	// The slow client reads nothing more: its guest ends up blocked in a write.
	wantServedMeanwhile(t, ctx, srv)
}

// wantServedMeanwhile sends a small upload to hash and wants it answered.
func wantServedMeanwhile(t *testing.T, ctx context.Context, srv *httptest.Server) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/s/hash", strings.NewReader("abc"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("second request while the first one waits on its client: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "3 ") {
		t.Fatalf("second request: %d %q", resp.StatusCode, body)
	}
}

// A guest waiting for a slow upload gives up its place in the running bound too: with a
// bound of one, a request on the other instance is served meanwhile. At the timeout the
// wait ends with 504, and the instance serves again.
func TestWarmStreamSlowUploadFreesBound(t *testing.T) {
	ex := newExecutor(t, Config{MaxRunning: 1})
	srv, _, sink := startStream(t, ex, 2, func(s *runtime.Spec) { s.Timeout = 3 * time.Second })
	ctx := streamCtx(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/s/hash", pr)
	slow := make(chan *http.Response, 1)
	go func() {
		resp, _ := http.DefaultClient.Do(req)
		slow <- resp
	}()
	if _, err := pw.Write([]byte("some")); err != nil { // read by the guest: it is running
		t.Fatal(err)
	}
	wantServedMeanwhile(t, ctx, srv)
	select {
	case r := <-slow:
		t.Fatalf("the stalled upload was answered before its timeout: %v", r)
	default:
	}
	r := <-slow
	if r == nil || r.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("stalled upload: %v, want 504", r)
	}
	r.Body.Close()
	sink.WantContains(t, "still waiting for the request body after 3s")
}

// A streamed answer past the response limit, or past the timeout, is cut: the client sees
// the stream break rather than end, the log says why, and the next request is served.
func TestWarmStreamLimitAndTimeout(t *testing.T) {
	ex := newExecutor(t, Config{MaxResponseBytes: 1 << 20})
	srv, _, sink := startStream(t, ex, 1, func(s *runtime.Spec) { s.Timeout = time.Second })
	for _, path := range []string{"/s/big?kib=4096", "/s/stall"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || err == nil {
			t.Fatalf("%s: %d, %d bytes, err %v; want 200 and a broken stream", path, resp.StatusCode, len(body), err)
		}
		if len(body) == 0 || len(body) >= 4<<20 {
			t.Fatalf("%s: %d bytes before the cut", path, len(body))
		}
	}
	sink.WantContains(t, "more than 1048576 bytes")
	sink.WantContains(t, "still running after 1s")
	resp, err := http.Get(srv.URL + "/s/ticks?n=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "data: tick 0\n\n" {
		t.Fatalf("after the cuts: %d %q", resp.StatusCode, body)
	}
}
