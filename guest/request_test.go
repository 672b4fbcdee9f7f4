package guest

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// framed turns a request in HTTP/1.1 text form into what v9 writes on stdin: the framed head
// (AppendRequest, every header kept) and then the bytes that follow the text's head.
func framed(t testing.TB, text, remote string) string {
	t.Helper()
	i := strings.Index(text, "\r\n\r\n")
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(text[:i+4])))
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	delete(r.Header, "Host")
	return string(AppendRequest(nil, r, remote, func(string) bool { return true })) + text[i+4:]
}

var keepAll = func(string) bool { return true }

// A request v9 frames reaches the handler as net/http's server made it: method, target,
// URL, Host, the client's address, length and headers, whatever their bytes.
func FuzzRequestRoundTrip(f *testing.F) {
	f.Add("GET", "/hello/x?a=1", "example", "10.0.0.1:5", "User-Agent", "bench", "X-A", "1\x002", int64(0), true)
	f.Add("POST", "/a%20b/c?q=1&r=%zz", "h:80", "", "X-Lower", " v \t", "Accept", "*/*", int64(-1), true)
	f.Add("OPTIONS", "*", "h", "[::1]:9", "A", "", "B", "\xff\x01", int64(12), false)
	f.Add("GET", "//a/b?c?d", "a", "x", "A", "1", "A", "2", int64(5), true)
	f.Fuzz(func(t *testing.T, method, target, host, remote, k1, v1, k2, v2 string, length int64, body bool) {
		if method == "" || target == "" || !isToken(k1) || !isToken(k2) {
			return // net/http never makes such a request (the guest refuses such names)
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		if _, err := url.ParseRequestURI(u.RequestURI()); err != nil {
			return // an opaque target ("a:0" sends "0"), refused as net/http refuses it
		}
		r := &http.Request{Method: method, URL: u, Host: host, Header: http.Header{}, ContentLength: max(length, -1)}
		if body {
			r.Body = http.NoBody
			if length != 0 {
				r.Body = io.NopCloser(strings.NewReader(""))
			}
		}
		r.Header[http.CanonicalHeaderKey(k1)] = strings.Split(v1, "\x00")
		r.Header.Add(k2, v2)
		b := AppendRequest(nil, r, remote, keepAll)
		got, err := parseRequest(b[4:])
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		want := int64(0)
		if body && length != 0 {
			want = max(length, -1)
		}
		if got.Method != method || got.RequestURI != u.RequestURI() || got.Host != host || got.RemoteAddr != remote ||
			got.ContentLength != want || got.Proto != "HTTP/1.1" || (want < 0) != (len(got.TransferEncoding) == 1) {
			t.Fatalf("%q: got %s %s %s %s %d %v", b, got.Method, got.RequestURI, got.Host, got.RemoteAddr, got.ContentLength, got.TransferEncoding)
		}
		if ref, _ := url.ParseRequestURI(u.RequestURI()); !reflect.DeepEqual(got.URL, ref) {
			t.Fatalf("URL %#v, want %#v", got.URL, ref)
		}
		if !reflect.DeepEqual(got.Header, r.Header) {
			t.Fatalf("header %q, want %q", got.Header, r.Header)
		}
	})
}

// parseRequest never panics, whatever it is given, and what it accepts frames back to itself
// — but for a target not in the form v9 sends (a space in its path, say), which keeps its
// bytes in RequestURI while its URL says what it means, as net/http's server does.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(framed(f, "GET /hello/x HTTP/1.1\r\nHost: example\r\nUser-Agent: bench\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n", "10.0.0.1:5"))[4:])
	f.Add([]byte(framed(f, "POST /a%20b/c?q=1 HTTP/1.1\r\nHost: h:80\r\nX-A: 1\r\nX-A: 2\r\nTransfer-Encoding: chunked\r\n\r\n", ""))[4:])
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest(b)
		if err != nil {
			return
		}
		if r.ContentLength != 0 {
			r.Body = io.NopCloser(strings.NewReader(""))
		}
		again, err := parseRequest(AppendRequest(nil, r, r.RemoteAddr, keepAll)[4:])
		if err != nil {
			t.Fatalf("%q: framed again: %v", b, err)
		}
		sameURL := again.URL.Path == r.URL.Path && again.URL.RawQuery == r.URL.RawQuery &&
			again.URL.ForceQuery == r.URL.ForceQuery && again.URL.RequestURI() == r.URL.RequestURI()
		if again.Method != r.Method || again.RequestURI != r.URL.RequestURI() || again.Host != r.Host ||
			again.ContentLength != r.ContentLength || !reflect.DeepEqual(again.Header, r.Header) || !sameURL {
			t.Fatalf("%q: framed again differs", b)
		}
	})
}

// plainURI, whenever it accepts a request target, makes of it what url.ParseRequestURI makes.
func FuzzPlainURI(f *testing.F) {
	for _, s := range []string{"/hello/x", "/a?", "/a?b=1&c=%zz", "//a/b?c?d", "/a(b)", "/a#f", "/a%20b", "/a?\x01", "/$&+,:;=@-_.~", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		var u url.URL
		if !plainURI(&u, uri) {
			return
		}
		ref, err := url.ParseRequestURI(uri)
		if err != nil {
			t.Fatalf("plainURI accepted what url.ParseRequestURI refuses (%v): %q", err, uri)
		}
		if !reflect.DeepEqual(&u, ref) {
			t.Fatalf("%q: %#v, want %#v", uri, u, ref)
		}
	})
}

// Header names that are not canonical (net/http's server never makes them) reach the guest
// canonical, with the values of names that collide joined.
func TestAppendRequestCanonical(t *testing.T) {
	r := httptest("GET", "/")
	r.Header["x-a"] = []string{"1"}
	r.Header["X-A"] = []string{"2"}
	got, err := parseRequest(AppendRequest(nil, r, "", keepAll)[4:])
	if err != nil {
		t.Fatal(err)
	}
	if vs := got.Header["X-A"]; len(vs) != 2 || len(got.Header) != 1 {
		t.Fatalf("header %q", got.Header)
	}
}

func httptest(method, target string) *http.Request {
	u, _ := url.ParseRequestURI(target)
	return &http.Request{Method: method, URL: u, Host: "h", Header: http.Header{}}
}

// A head allocates four times (its string, the Request with its URL and its first header
// values, the header map and its slots) whatever its size, one more past keptValues values;
// the values of each header stay apart (appending to one never writes over the next).
func TestParseRequestAllocations(t *testing.T) {
	for _, values := range []int{0, 3, keptValues, keptValues + 1} {
		text := "GET /hello/x?a=1 HTTP/1.1\r\nHost: example\r\n"
		for i := range values {
			text += "X-H" + string(rune('a'+i%2)) + ": v" + strings.Repeat("x", i) + "\r\n"
		}
		head := []byte(framed(t, text+"\r\n", "10.0.0.1:5"))[4:]
		want := 4.0
		if values > keptValues {
			want = 5
		}
		if values == 0 {
			want = 3 // no header: the map needs no slots
		}
		got := testing.AllocsPerRun(100, func() {
			if _, err := parseRequest(head); err != nil {
				t.Fatal(err)
			}
		})
		if got > want {
			t.Errorf("%d header values: %.0f allocations, want at most %.0f", values, got, want)
		}
		r, err := parseRequest(head)
		if err != nil {
			t.Fatal(err)
		}
		if values < 2 {
			continue
		}
		a, b := r.Header["X-Ha"], r.Header["X-Hb"]
		bWas := slices.Clone(b)
		_ = append(a, "appended")
		if !slices.Equal(r.Header["X-Hb"], bWas) || len(a)+len(b) != values {
			t.Errorf("%d values: appending to X-Ha changed X-Hb: %q (was %q)", values, r.Header["X-Hb"], bWas)
		}
	}
}
