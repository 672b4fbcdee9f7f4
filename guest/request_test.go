package guest

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

// The lean parser, whenever it accepts a request, makes of it what http.ReadRequest makes of
// the same bytes (less the Host header, as net/http's server does), and parseRequest never
// panics, whatever it is given.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET /hello/x HTTP/1.1\r\nHost: example\r\nUser-Agent: bench\r\nAccept: */*\r\nV9-Remote-Addr: 10.0.0.1:5\r\nContent-Length: 0\r\n\r\n",
		"POST /a%20b/c?q=1&r=%zz HTTP/1.1\r\nHost: h:80\r\nX-A: 1\r\nX-A: 2\r\nx-lower: v \t\r\nContent-Length: 4\r\n\r\npingextra",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nshort",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nping\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /\xff HTTP/1.1\r\nHost: a\r\nX: \x80\x01\r\n\r\n",
		"GET /a? HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET //a/b?c?d#e HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseRequest(b)
		lean := parseLean(b)
		if lean == nil {
			return
		}
		ref, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("lean parser accepted what http.ReadRequest refuses (%v): %q", err, b)
		}
		delete(ref.Header, "Host")
		if lean.Method != ref.Method || lean.RequestURI != ref.RequestURI || lean.URL.String() != ref.URL.String() ||
			lean.Proto != ref.Proto || lean.ProtoMajor != ref.ProtoMajor || lean.ProtoMinor != ref.ProtoMinor ||
			lean.Host != ref.Host || lean.ContentLength != ref.ContentLength || lean.Close != ref.Close {
			t.Fatalf("%q:\nlean %s %s %s %s %d %v\nref  %s %s %s %s %d %v", b,
				lean.Method, lean.URL, lean.Proto, lean.Host, lean.ContentLength, lean.Close,
				ref.Method, ref.URL, ref.Proto, ref.Host, ref.ContentLength, ref.Close)
		}
		if !reflect.DeepEqual(lean.URL, ref.URL) {
			t.Fatalf("%q: URL %#v, want %#v", b, lean.URL, ref.URL)
		}
		if !reflect.DeepEqual(lean.Header, ref.Header) {
			t.Fatalf("%q: header %q, want %q", b, lean.Header, ref.Header)
		}
	})
}

// plainURI, whenever it accepts a request target, makes of it what url.ParseRequestURI makes.
func FuzzPlainURI(f *testing.F) {
	for _, s := range []string{"/hello/x", "/a?", "/a?b=1&c=%zz", "//a/b?c?d", "/a(b)", "/a#f", "/a%20b", "/a?\x01", "/$&+,:;=@-_.~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		u := plainURI(uri)
		if u == nil {
			return
		}
		if uri == "" || uri[0] != '/' {
			return // parseLean only asks about targets that start with "/"
		}
		ref, err := url.ParseRequestURI(uri)
		if err != nil {
			t.Fatalf("plainURI accepted what url.ParseRequestURI refuses (%v): %q", err, uri)
		}
		if !reflect.DeepEqual(u, ref) {
			t.Fatalf("%q: %#v, want %#v", uri, u, ref)
		}
	})
}

// Requests v9 writes take the lean path; others still parse.
func TestParseRequestPaths(t *testing.T) {
	wire := "GET /hello/x?a=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n"
	if parseLean([]byte(wire)) == nil {
		t.Fatal("v9's own request shape did not take the lean path")
	}
	chunked := "POST /x HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nping\r\n0\r\n\r\n"
	if parseLean([]byte(chunked)) != nil {
		t.Fatal("a chunked request took the lean path")
	}
	r, err := parseRequest([]byte(chunked))
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentLength != -1 || r.Body != nil || r.Host != "example" || r.Header["Host"] != nil {
		t.Fatalf("chunked request: length %d, body %v, host %q, header %v", r.ContentLength, r.Body, r.Host, r.Header)
	}
}
