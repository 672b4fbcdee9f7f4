package guest

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// Reading the request is most of what the guest does for a small handler, and Go compiled to
// wasm pays about a microsecond per allocation: http.ReadRequest's textproto reader, header
// strings and value slices cost more than the handler itself. v9 writes the request in one
// known shape (see the package doc), so parseRequest reads that shape with a handful of
// allocations — one string for the whole header block, which every name and value slices, one
// map, one backing array for the values, the URL and the Request — and hands anything else to
// http.ReadRequest, so that the handler sees what http.ReadRequest would have made of the same
// bytes, less the Host header, which net/http's server moves to Request.Host as well.

// parseRequest reads a request's head (the request line and the headers, through the blank
// line) from b. The request it returns has no Body: the caller sets it, to the stream that
// follows the head.
func parseRequest(b []byte) (*http.Request, error) {
	if r := parseLean(b); r != nil {
		return r, nil
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		return nil, err
	}
	delete(r.Header, "Host")
	r.Body = nil
	return r, nil
}

// parseLean parses the request v9 writes — the request line, headers with valid names and
// values on one line each, one Host, at most one Content-Length as digits — and returns nil
// for anything else. What follows the head in b is ignored.
func parseLean(b []byte) *http.Request {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return nil
	}
	head := string(b[:end+2]) // each line with its CRLF

	line, rest, ok := cutLine(head)
	if !ok {
		return nil
	}
	method, line, ok := strings.Cut(line, " ")
	if !ok || !isToken(method) || method == "CONNECT" {
		return nil
	}
	uri, proto, ok := strings.Cut(line, " ")
	if !ok || proto != "HTTP/1.1" || uri == "" || uri[0] != '/' {
		return nil
	}
	u := plainURI(uri)
	if u == nil {
		var err error
		if u, err = url.ParseRequestURI(uri); err != nil {
			return nil
		}
	}

	n := strings.Count(rest, "\n")
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	host, hosts := "", 0
	length, lengths := int64(0), 0
	for rest != "" {
		if line, rest, ok = cutLine(rest); !ok {
			return nil
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return nil
		}
		name, value := line[:colon], line[colon+1:]
		if !isToken(name) || !validValue(value) {
			return nil
		}
		value = textproto.TrimString(value)
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			host, hosts = value, hosts+1
			continue
		case "Content-Length":
			if length, ok = parseLength(value); !ok {
				return nil
			}
			lengths++
		case "Transfer-Encoding", "Pragma", "Connection":
			return nil // http.ReadRequest gives these meaning
		}
		vals = append(vals, value)
		if old, ok := h[key]; ok {
			h[key] = append(old, value)
		} else {
			h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if hosts != 1 || lengths > 1 {
		return nil
	}
	r := &http.Request{
		Method:        method,
		URL:           u,
		Proto:         proto,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: length,
		Host:          host,
		RequestURI:    uri,
	}
	return r
}

// cutLine splits s after its first line, which must end with CRLF; the line is returned
// without it.
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 1 || s[i-1] != '\r' {
		return "", "", false
	}
	return s[:i-1], s[i+1:], true
}

// plainURI is url.ParseRequestURI for the common request target that needs no decoding: a
// path of characters a path never escapes, then an optional query without control bytes. It
// returns nil for anything else.
func plainURI(uri string) *url.URL {
	path, query, hasQuery := strings.Cut(uri, "?")
	for i := 0; i < len(path); i++ {
		if c := path[i]; c >= 0x80 || !pathByte[c] {
			return nil
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return nil
		}
	}
	return &url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
}

// pathByte: the bytes url.URL keeps as they are in a path (url.PathEscape's unreserved and
// the reserved characters a path allows).
var pathByte = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// parseLength reads a Content-Length of at most 18 digits.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// isToken reports whether s is an HTTP token (RFC 9110): a method or a header name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !tokenByte[c] {
			return false
		}
	}
	return true
}

// validValue reports whether s is a header value with no control byte but tab.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

var tokenByte = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
