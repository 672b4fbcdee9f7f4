package client

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// countingConn counts the writes made to a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestOneWriteSendsUnaryCallInOneWrite: a unary Connect call through the client's transport
// reaches the connection as one write (headers and body together), and the server gets
// the body whole; the plain transport takes two writes. A stream's body (unknown length)
// passes through as it is.
func TestOneWriteSendsUnaryCallInOneWrite(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/t.T/Echo", connect.NewUnaryHandler("/t.T/Echo", func(_ context.Context, r *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
		return connect.NewResponse(wrapperspb.String("echo " + r.Msg.Value)), nil
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	call := func(wrap func(http.RoundTripper) http.RoundTripper) int64 {
		var writes atomic.Int64
		d := &net.Dialer{}
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{c, &writes}, nil
		}}
		defer tr.CloseIdleConnections()
		cli := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](&http.Client{Transport: wrap(tr)}, srv.URL+"/t.T/Echo")
		resp, err := cli.CallUnary(ctx, connect.NewRequest(wrapperspb.String("hi")))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Msg.Value != "echo hi" {
			t.Fatalf("answer %q, want %q", resp.Msg.Value, "echo hi")
		}
		return writes.Load()
	}
	if n := call(func(rt http.RoundTripper) http.RoundTripper { return rt }); n != 2 {
		t.Logf("the plain transport took %d writes (net/http may have changed; OneWrite still must take one)", n)
	}
	if n := call(OneWrite); n != 1 {
		t.Fatalf("a unary call through OneWrite took %d writes, want 1", n)
	}
}

// TestOneWritePassesStreamsAndChecksLength: a body of unknown length passes untouched (read
// by the transport as it comes), and a body shorter or longer than its ContentLength is
// refused, as net/http refuses it, instead of being sent cut.
func TestOneWritePassesStreamsAndChecksLength(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.TransferEncoding)
	}))
	defer srv.Close()
	rt := OneWrite(http.DefaultTransport)
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("chunk")); pw.Close() }()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, pr)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if te, _ := got.Load().([]string); len(te) != 1 || te[0] != "chunked" {
		t.Fatalf("a stream's body arrived with transfer encoding %v, want chunked", te)
	}
	req, _ = http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader("short")))
	req.ContentLength = 10
	if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "ContentLength=10") {
		t.Fatalf("a body shorter than its length: %v, want a ContentLength error", err)
	}
	req, _ = http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader("longer")))
	req.ContentLength = 3
	if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "ContentLength=3 with a longer Body") {
		t.Fatalf("a body longer than its length: %v, want a ContentLength error", err)
	}
}

// TestOneWriteWithHeaderSetsItOnBothPaths: the header arrives with a small body (sent in one
// write) and with a stream (passed through), and the caller's request keeps its headers.
func TestOneWriteWithHeaderSetsItOnBothPaths(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- r.Header.Get("Authorization")
	}))
	defer srv.Close()
	rt := OneWriteWithHeader(http.DefaultTransport, "Authorization", "Bearer s3cret")
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("chunk")); pw.Close() }()
	for name, body := range map[string]io.Reader{"small body": strings.NewReader("hello"), "stream": pr} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if h := <-got; h != "Bearer s3cret" {
			t.Errorf("%s: the server got Authorization %q", name, h)
		}
		if h := req.Header.Get("Authorization"); h != "" {
			t.Errorf("%s: the caller's request was changed: Authorization %q", name, h)
		}
	}
}
