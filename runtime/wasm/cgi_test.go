package wasm

import (
	"net/http"
	"strings"
	"testing"
)

func TestParseCGI(t *testing.T) {
	cases := []struct {
		name   string
		out    string
		status int
		header http.Header
		body   string
		err    string
	}{
		{name: "plain", out: "Content-Type: text/plain\n\nhi\n", status: 200,
			header: http.Header{"Content-Type": {"text/plain"}}, body: "hi\n"},
		{name: "crlf", out: "Content-Type: text/html\r\nX-A: 1\r\n\r\n<p>", status: 200,
			header: http.Header{"Content-Type": {"text/html"}, "X-A": {"1"}}, body: "<p>"},
		{name: "status with reason", out: "Status: 404 Not Found\nContent-Type: text/plain\n\nnope", status: 404,
			header: http.Header{"Content-Type": {"text/plain"}}, body: "nope"},
		{name: "bare status", out: "Status: 503\n\n", status: 503, header: http.Header{}},
		{name: "location", out: "Location: /there\n\n", status: 302, header: http.Header{"Location": {"/there"}}},
		{name: "location with status", out: "Location: /there\nStatus: 301 Moved\n\n", status: 301,
			header: http.Header{"Location": {"/there"}}},
		{name: "repeated header", out: "Set-Cookie: a=1\nset-cookie: b=2\n\n", status: 200,
			header: http.Header{"Set-Cookie": {"a=1", "b=2"}}},
		{name: "dropped headers", out: "Content-Length: 99\nConnection: close\nTransfer-Encoding: chunked\nX-Ok: y\n\nbody", status: 200,
			header: http.Header{"X-Ok": {"y"}}, body: "body"},
		{name: "value trimmed, empty value kept", out: "X-A:   spaced \t\nX-Empty:\n\n", status: 200,
			header: http.Header{"X-A": {"spaced"}, "X-Empty": {""}}},
		{name: "body keeps blank lines", out: "X-A: 1\n\n\n\nrest\n\n", status: 200,
			header: http.Header{"X-A": {"1"}}, body: "\n\nrest\n\n"},

		{name: "empty", out: "", err: "no output"},
		{name: "no header block", out: "just text", err: `no header block: output starts "just text"`},
		{name: "body without headers", out: "<h1>hi</h1>\n", err: `bad header line "<h1>hi</h1>"`},
		{name: "unterminated", out: "Content-Type: text/plain\n", err: "header block not ended by a blank line"},
		{name: "starts blank", out: "\nbody", err: "empty header block"},
		{name: "no colon", out: "Content-Type text/plain\n\n", err: "bad header line"},
		{name: "empty name", out: ": x\n\n", err: "bad header line"},
		{name: "space in name", out: "Content Type: x\n\n", err: "bad header line"},
		{name: "folded", out: "X-A: 1\n  continued\n\n", err: "bad header line"},
		{name: "control in value", out: "X-A: a\rb\n\n", err: "bad header value"},
		{name: "bad status", out: "Status: abc\n\n", err: `bad Status "abc"`},
		{name: "status too big", out: "Status: 600\n\n", err: "want 200-599"},
		{name: "informational status", out: "Status: 101 Switching Protocols\n\n", err: "want 200-599"},
		{name: "four digits", out: "Status: 2000\n\n", err: "bad Status"},
		{name: "two statuses", out: "Status: 200\nStatus: 404\n\n", err: "more than one Status"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := parseCGI([]byte(tc.out))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.status != tc.status || string(res.body) != tc.body {
				t.Errorf("status %d body %q, want %d %q", res.status, res.body, tc.status, tc.body)
			}
			if len(res.header) != len(tc.header) {
				t.Errorf("header %v, want %v", res.header, tc.header)
			}
			for k, want := range tc.header {
				if got := res.header[k]; strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func FuzzParseCGI(f *testing.F) {
	for _, seed := range []string{
		"Content-Type: text/plain\n\nhi",
		"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nbody",
		"Location: /x\n\n",
		"Status: 999\n\n",
		"garbage",
		"\n\n",
		"X: \x00\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		res, err := parseCGI(out)
		if err != nil {
			return
		}
		if res.status < 100 || res.status > 599 {
			t.Fatalf("status %d from %q", res.status, out)
		}
		if res.header == nil {
			t.Fatal("nil header")
		}
		for k, vs := range res.header {
			if !isToken([]byte(k)) || droppedHeaders[k] || k == "Status" {
				t.Fatalf("header name %q passed on", k)
			}
			for _, v := range vs {
				if !validValue([]byte(v)) || strings.ContainsAny(v, "\r\n") {
					t.Fatalf("header value %q passed on", v)
				}
			}
		}
		if len(res.body) > len(out) {
			t.Fatalf("body longer than the output")
		}
	})
}

func TestHeaderEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"User-Agent":       "HTTP_USER_AGENT",
		"X-Forwarded-For":  "HTTP_X_FORWARDED_FOR",
		"content-type":     "HTTP_CONTENT_TYPE",
		"X-V9-Script-Name": "",
		"x-v9-hop":         "",
		"Under_Score":      "",
		"Proxy":            "",
		"Bad=Name":         "",
		"":                 "",
	} {
		got, ok := headerEnvName(in)
		if got != want || ok != (want != "") {
			t.Errorf("headerEnvName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestPathSplitting(t *testing.T) {
	for _, tc := range []struct{ header, path, script, info string }{
		{"/hello", "/hello/a/b", "/hello", "/a/b"},
		{"/hello", "/hello", "/hello", ""},
		{"/hello/", "/hello/", "/hello", "/"},
		{"/hello", "/helloworld", "/hello", "/helloworld"},
		{"/hello", "/other/x", "/hello", "/other/x"},
		{"", "/a", "", "/a"},
		{"/", "/a", "", "/a"},
		{"relative", "/a", "", "/a"},
	} {
		script := scriptName(tc.header)
		if info := stripScript(tc.path, script); script != tc.script || info != tc.info {
			t.Errorf("script %q path %q: SCRIPT_NAME %q PATH_INFO %q, want %q %q",
				tc.header, tc.path, script, info, tc.script, tc.info)
		}
	}
}

func TestSplitHostPort(t *testing.T) {
	for _, tc := range []struct{ in, scheme, host, port string }{
		{"example.com:8080", "http", "example.com", "8080"},
		{"example.com", "http", "example.com", "80"},
		{"example.com", "https", "example.com", "443"},
		{"[::1]:9", "http", "::1", "9"},
		{"[::1]", "https", "::1", "443"},
		{"192.0.2.1:1234", "", "192.0.2.1", "1234"},
	} {
		if host, port := splitHostPort(tc.in, tc.scheme); host != tc.host || port != tc.port {
			t.Errorf("splitHostPort(%q, %q) = %q %q, want %q %q", tc.in, tc.scheme, host, port, tc.host, tc.port)
		}
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{log: func(stream, line string) { got = append(got, stream+":"+line) }}
	w.Write([]byte("one\r\ntw"))
	w.Write([]byte("o\nthree"))
	w.flush()
	if want := "stderr:one|stderr:two|stderr:three"; strings.Join(got, "|") != want {
		t.Errorf("lines %q, want %q", got, want)
	}

	got = nil
	w.reset()
	w.log = func(_, line string) { got = append(got, line) }
	long := strings.Repeat("x", maxLineBytes+10)
	w.Write([]byte(long + "\n"))
	if len(got) != 2 || len(got[0]) != maxLineBytes || len(got[1]) != 10 {
		t.Errorf("a long line became %d pieces", len(got))
	}

	got = nil
	w.reset()
	w.log = func(_, line string) { got = append(got, line) }
	chunk := []byte(strings.Repeat("y", 1023) + "\n")
	for range 2 * maxStderrBytes / len(chunk) {
		if n, err := w.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("write: %d %v", n, err)
		}
	}
	if n := len(got); n > maxStderrBytes/len(chunk)+2 {
		t.Errorf("%d lines logged past the stderr limit", n)
	}
	if last := got[len(got)-1]; !strings.Contains(last, "dropping the rest") {
		t.Errorf("last line %q does not say stderr was cut", last)
	}
}

func TestLimitedBuffer(t *testing.T) {
	over := 0
	b := &limitedBuffer{limit: 5, onOverflow: func() { over++ }}
	if n, err := b.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatal(n, err)
	}
	if _, err := b.Write([]byte("def")); err == nil || !b.overflow || over != 1 {
		t.Fatalf("write past the limit: err %v overflow %v calls %d", err, b.overflow, over)
	}
	if _, err := b.Write([]byte("g")); err == nil || over != 1 {
		t.Fatalf("write after overflow: err %v calls %d", err, over)
	}
	if string(b.buf) != "abc" {
		t.Errorf("buffer %q", b.buf)
	}
}
