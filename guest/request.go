package guest

import (
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// The request head, framed (v9_http_serve2's stdin). Go compiled to wasm runs a scanning
// loop or an allocation one to two orders of magnitude slower than native Go, and reading an
// HTTP/1.1 head in the guest (finding lines, checking names and values, canonicalizing keys)
// was about 40 % of a small handler's call. v9 has parsed and checked the request already, so it
// sends it as length-prefixed fields and the guest only slices them: one string holds the
// whole head, one allocation the Request with its URL and the values of its first headers,
// two the header map.
//
// All integers are little-endian; a string is a u32 length and its bytes.
//
//	u32  n        the length of the rest of the head
//	i64  length   Content-Length, or -1 when unknown (the body then runs to EOF)
//	u32  fields   the number of header names
//	u32  values   the number of header values, all names together
//	str  method
//	str  target   the request target, as in the request line (origin form)
//	str  host     Request.Host
//	str  remote   the client's address (Request.RemoteAddr), or empty
//	then for each header name: str name (canonical), u32 count, count × str value
//
// The Host header is not among the headers (net/http's server moves it to Request.Host),
// nor are hop-by-hop ones, Content-Length or Transfer-Encoding. After the head comes the
// body's bytes, unframed, then EOF where the body ends.

// frameFixed is the size of the head's fixed part after n: length, fields and values.
const frameFixed = 8 + 4 + 4

// AppendRequest appends r's head, framed as v9_http_serve2 reads it, to b: the headers keep
// reports true for (it is given canonical names); remote is the client's address, or empty.
// It is the host's half of the ABI, exported for v9's runtime (and tests); a guest never
// calls it.
func AppendRequest(b []byte, r *http.Request, remote string, keep func(name string) bool) []byte {
	if out, ok := appendRequest(b, r, r.Header, remote, keep); ok {
		return out
	}
	// Names net/http's server never makes, which may collide once canonical.
	out, _ := appendRequest(b, r, canonical(r.Header), remote, keep)
	return out
}

// appendRequest is AppendRequest with the headers h; it gives up (ok false) at a name that is
// not canonical.
func appendRequest(b []byte, r *http.Request, h http.Header, remote string, keep func(name string) bool) (_ []byte, ok bool) {
	start := len(b)
	b = append(b, 0, 0, 0, 0) // n, set at the end
	length := r.ContentLength
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		length = 0
	case length < 0:
		length = -1
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(length))
	counts := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // fields and values, set below
	b = appendString(b, r.Method)
	b = appendString(b, r.URL.RequestURI())
	b = appendString(b, r.Host)
	b = appendString(b, remote)
	var fields, values uint32
	for name, vs := range h {
		if http.CanonicalHeaderKey(name) != name {
			return b[:start], false
		}
		if len(vs) == 0 || !keep(name) {
			continue
		}
		b = appendString(b, name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
		fields++
		values += uint32(len(vs))
	}
	binary.LittleEndian.PutUint32(b[counts:], fields)
	binary.LittleEndian.PutUint32(b[counts+4:], values)
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b, true
}

// canonical returns h with its names canonical, the values of names that then collide
// joined.
func canonical(h http.Header) http.Header {
	c := make(http.Header, len(h))
	for name, vs := range h {
		k := http.CanonicalHeaderKey(name)
		c[k] = append(c[k], vs...)
	}
	return c
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

var errBadFrame = errors.New("guest: malformed request head")

// request is a Request, its URL and the values of its first headers, allocated together: Go
// compiled to wasm pays one to two microseconds for each allocation.
type request struct {
	r    http.Request
	u    url.URL
	vals [keptValues]string
}

// keptValues is how many header values a request holds without an allocation of their own.
const keptValues = 8

// parseRequest builds the Request a head describes (b: the bytes after n). The Request has
// no Body: the caller sets it, to the stream that follows the head.
func parseRequest(b []byte) (*http.Request, error) {
	if len(b) < frameFixed {
		return nil, errBadFrame
	}
	f := frame{b: b, s: string(b), off: frameFixed}
	length := int64(binary.LittleEndian.Uint64(b))
	fields := binary.LittleEndian.Uint32(b[8:])
	values := binary.LittleEndian.Uint32(b[12:])
	method, target, host, remote := f.str(), f.str(), f.str(), f.str()
	// Each name takes at least 8 bytes and each value 4: counts past that are not real.
	if f.bad || length < -1 || method == "" || target == "" ||
		uint64(fields)*8 > uint64(len(b)) || uint64(values)*4 > uint64(len(b)) {
		return nil, errBadFrame
	}
	rq := new(request)
	r := &rq.r
	if !plainURI(&rq.u, target) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return nil, err
		}
		rq.u = *u
	}
	r.Method, r.URL, r.RequestURI, r.Host, r.RemoteAddr = method, &rq.u, target, host, remote
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.ContentLength = length
	if length < 0 {
		r.TransferEncoding = []string{"chunked"}
	}
	r.Header = make(http.Header, fields)
	vals := rq.vals[:min(values, keptValues)]
	if values > keptValues {
		vals = make([]string, values)
	}
	used := uint32(0)
	for range fields {
		name := f.str()
		n := f.u32()
		if f.bad || n == 0 || n > values-used || !canonicalToken(name) {
			return nil, errBadFrame
		}
		vs := vals[used : used+n : used+n]
		for i := range vs {
			vs[i] = f.str()
		}
		used += n
		r.Header[name] = vs
	}
	if f.bad || used != values || f.off != len(b) || len(r.Header) != int(fields) {
		return nil, errBadFrame
	}
	return r, nil
}

// frame reads a head's fields: integers from b, strings sliced from s (b as one string).
// Reading past the end sets bad and returns zeros.
type frame struct {
	b   []byte
	s   string
	off int
	bad bool
}

func (f *frame) u32() uint32 {
	if len(f.b)-f.off < 4 {
		f.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(f.b[f.off:])
	f.off += 4
	return v
}

func (f *frame) str() string {
	n := f.u32()
	if uint64(n) > uint64(len(f.b)-f.off) {
		f.bad = true
		return ""
	}
	s := f.s[f.off : f.off+int(n)]
	f.off += int(n)
	return s
}

// plainURI is url.ParseRequestURI for the common request target that needs no decoding: a
// path of characters a path never escapes, then an optional query without control bytes.
// It fills u and reports true, or reports false for anything else.
func plainURI(u *url.URL, uri string) bool {
	if uri == "" || uri[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(uri, "?")
	for i := 0; i < len(path); i++ {
		if c := path[i]; c >= 0x80 || !pathByte[c] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// pathByte: the bytes url.URL keeps as they are in a path (url.PathEscape's unreserved and
// the reserved characters a path allows).
var pathByte = alnumAnd("-_.~$&+,/:;=@")

// tokenByte: the bytes of an HTTP token (RFC 9110 tchar).
var tokenByte = alnumAnd("!#$%&'*+-.^_`|~")

// alnumAnd returns the table of the ASCII letters and digits and the bytes of extra.
func alnumAnd(extra string) (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range extra {
		t[c] = true
	}
	return t
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

// canonicalToken reports whether s is a header name in net/http's canonical form (what the
// host sends), checked in one pass: a handler's Header.Get finds only canonical names.
func canonicalToken(s string) bool {
	if s == "" {
		return false
	}
	upper := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !tokenByte[c] || upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
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
