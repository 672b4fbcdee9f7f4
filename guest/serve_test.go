package guest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// One framed request becomes the handler's call, and its answer a CGI response with status,
// headers and body; the client's address reaches RemoteAddr. A malformed head is answered
// 400, and a head cut short ends the call with an error.
func TestServeOneRequest(t *testing.T) {
	Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo", r.Method+" "+r.URL.String()+" "+r.RemoteAddr)
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	}))
	defer Handle(http.NotFoundHandler())
	var c conn
	for i := 0; i < 2; i++ { // the scratch state is reused
		in := framed(t, "POST /hello/x?a=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 4\r\n\r\nping", "10.0.0.1:5")
		var out bytes.Buffer
		if err := c.serve(strings.NewReader(in), &out); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, want := range []string{"Status: 201\r\n", "X-Echo: POST /hello/x?a=1 10.0.0.1:5\r\n", "\r\n\r\nping"} {
			if !strings.Contains(got, want) {
				t.Fatalf("response %q lacks %q", got, want)
			}
		}
	}
	var out bytes.Buffer
	garbage := "\x04\x00\x00\x00garb"
	if err := c.serve(strings.NewReader(garbage), &out); err != nil || !strings.HasPrefix(out.String(), "Status: 400") {
		t.Fatalf("bad request: %v %q", err, out.String())
	}
	out.Reset()
	if err := c.serve(strings.NewReader("\xff\xff"), &out); err == nil || out.Len() > 0 {
		t.Fatalf("a head cut short: %v %q", err, out.String())
	}
}

// writes records each write to stdout, to show what goes out when.
type writes struct{ w []string }

func (w *writes) Write(p []byte) (int, error) {
	w.w = append(w.w, string(p))
	return len(p), nil
}

// A flush sends the head and what was written as a chunk, in one write; the handler's
// return sends the rest, the last chunk and the trailers, declared or prefixed, in one more.
// A handler that never flushes gets one write.
func TestServeStreamed(t *testing.T) {
	Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("trailer") {
			w.Header().Set("Trailer", "X-Sum")
		}
		io.WriteString(w, "one")
		if r.URL.Query().Has("flush") {
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "two")
		w.Header().Set("X-Sum", "s")
		w.Header().Set(http.TrailerPrefix+"x-late", "l")
	}))
	defer Handle(http.NotFoundHandler())
	var c conn
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"flush", []string{
			"V9-Stream: chunked\r\nStatus: 200\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n3\r\none\r\n",
			"3\r\ntwo\r\n0\r\nX-Late: l\r\n\r\n"}},
		{"flush&trailer", []string{
			"V9-Stream: chunked\r\nStatus: 200\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n3\r\none\r\n",
			"3\r\ntwo\r\n0\r\nX-Sum: s\r\nX-Late: l\r\n\r\n"}},
		{"trailer", []string{
			"V9-Stream: chunked\r\nStatus: 200\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n6\r\nonetwo\r\n0\r\nX-Sum: s\r\nX-Late: l\r\n\r\n"}},
	} {
		var out writes
		in := framed(t, "GET /?"+tc.query+" HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "")
		if err := c.serve(strings.NewReader(in), &out); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out.w, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.query, out.w, tc.want)
		}
	}
}

// A body past autoStreamBytes is streamed though never flushed, in chunks of chunkBytes or
// more, so that the guest never holds it whole.
func TestServeLargeBodyStreams(t *testing.T) {
	Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		block := bytes.Repeat([]byte("x"), 1000)
		for range 3000 {
			w.Write(block)
		}
	}))
	defer Handle(http.NotFoundHandler())
	var c conn
	var out writes
	if err := c.serve(strings.NewReader(framed(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "")), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.w) < 3 || !strings.HasPrefix(out.w[0], streamMarker) || !strings.HasSuffix(out.w[len(out.w)-1], "0\r\n\r\n") {
		t.Fatalf("%d writes, first %.60q", len(out.w), out.w[0])
	}
	for _, w := range out.w[1:] {
		if len(w) > 2*chunkBytes {
			t.Fatalf("a write of %d bytes", len(w))
		}
	}
}

// The body is read from the stream after the head as the handler asks for it; what the
// handler leaves unread is not read at all, and the next request starts afresh.
func TestServeBodyStreamed(t *testing.T) {
	Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" {
			return
		}
		b, err := io.ReadAll(r.Body)
		w.Header().Set("X-Len", strconv.Itoa(len(b)))
		if err != nil || r.ContentLength != -1 {
			w.WriteHeader(500)
		}
	}))
	defer Handle(http.NotFoundHandler())
	var c conn
	body := strings.Repeat("b", 100<<10)
	in := &countingReader{r: strings.NewReader(framed(t, "POST /ignore HTTP/1.1\r\nHost: h\r\nContent-Length: 102400\r\n\r\n", "") + body)}
	var out bytes.Buffer
	if err := c.serve(iotest.OneByteReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if in.n > 1000 {
		t.Fatalf("a handler that ignores its body had %d bytes read", in.n)
	}
	out.Reset()
	chunked := framed(t, "POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", "") + body
	if err := c.serve(strings.NewReader(chunked), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Status: 200\r\n") || !strings.Contains(out.String(), "X-Len: 102400\r\n") {
		t.Fatalf("chunked body: %q", out.String())
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// Whatever arrives on stdin, serve answers in one of the two forms the host reads or ends
// the call with an error, and never panics; a body the head announces reaches the handler
// as the bytes that follow the head.
func FuzzServe(f *testing.F) {
	f.Add([]byte(framed(f, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nping", "")), uint8(1))
	f.Add([]byte(framed(f, "POST /x?flush HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nabc", "")), uint8(2))
	f.Add([]byte(framed(f, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", ""))[:9], uint8(0))
	Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", strconv.Itoa(len(b)))
		if r.URL.Query().Has("flush") {
			w.(http.Flusher).Flush()
		}
		w.Write(b)
	}))
	defer Handle(http.NotFoundHandler())
	var c conn
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		var out bytes.Buffer
		var r io.Reader = bytes.NewReader(in)
		if step > 0 {
			r = iotest.HalfReader(r)
		}
		if err := c.serve(r, &out); err != nil {
			if out.Len() > 0 {
				t.Fatalf("%q: failed (%v) after answering %q", in, err, out.String())
			}
			return
		}
		got := out.String()
		if !strings.HasPrefix(got, "Status: ") && !strings.HasPrefix(got, streamMarker+"Status: ") {
			t.Fatalf("%q: answer %q", in, got)
		}
		if len(in) < 4 {
			return
		}
		end := 4 + uint64(binary.LittleEndian.Uint32(in))
		if end > uint64(len(in)) {
			t.Fatalf("%q: answered %q to a head cut short", in, got)
		}
		req, err := parseRequest(in[4:end])
		if err == nil && req.ContentLength != 0 && strings.HasPrefix(got, "Status: 200") &&
			!strings.Contains(got, "X-Len: "+strconv.Itoa(len(in)-int(end))+"\r\n") {
			t.Fatalf("%q: the handler did not get the %d bytes after the head: %q", in, len(in)-int(end), got)
		}
	})
}
