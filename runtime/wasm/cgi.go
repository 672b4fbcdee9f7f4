package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/experimental"
)

// ScriptNameHeader is the request header in which the proxy names the path prefix it routed
// on ("/hello" when routed by path, absent or "" when routed by Host). It becomes SCRIPT_NAME
// and is stripped from the URL path to make PATH_INFO. Like every X-V9-* header, it is not
// passed to the guest as an HTTP_* variable.
const ScriptNameHeader = "X-V9-Script-Name"

// v9HeaderPrefix marks v9's own request headers, which guests never see.
const v9HeaderPrefix = "X-V9-"

var (
	errBodyTooLarge     = errors.New("request body too large")
	errResponseTooLarge = errors.New("response too large")
)

// requestConfig prepares c for one request: it builds the environment in one pass (the
// component's env, the request headers, the CGI variables), points stdin at the body and
// returns the context to instantiate with, which carries the environment to environ_get.
// The module configuration itself is c.cfg, built once when c was made.
func (in *instance) requestConfig(ctx context.Context, c *call, r *http.Request) (context.Context, error) {
	e := &c.env
	e.reset()
	for _, kv := range in.env {
		if err := e.add(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	for name, vals := range r.Header {
		key, ok := headerEnvName(name)
		if !ok || len(vals) == 0 || key == "HTTP_HOST" && r.Host != "" {
			continue
		}
		v := vals[0]
		if len(vals) > 1 {
			v = strings.Join(vals, ", ")
		}
		if err := e.add(key, v); err != nil {
			return nil, err
		}
	}
	if r.Host != "" {
		if err := e.add("HTTP_HOST", r.Host); err != nil {
			return nil, err
		}
	}
	for _, kv := range in.httpEnv { // the manifest's HTTP_* variables no request header set
		if !e.has(kv[0]) {
			if err := e.add(kv[0], kv[1]); err != nil {
				return nil, err
			}
		}
	}

	script := scriptName(r.Header.Get(ScriptNameHeader))
	pathInfo := stripScript(r.URL.Path, script)
	rawPathInfo := pathInfo
	if r.URL.RawPath != "" {
		rawPathInfo = stripScript(r.URL.EscapedPath(), (&url.URL{Path: script}).EscapedPath())
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	serverName, serverPort := splitHostPort(r.Host, scheme)
	remote, _ := splitHostPort(r.RemoteAddr, "")
	proto := r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	cgi := [...][2]string{
		{"GATEWAY_INTERFACE", "CGI/1.1"},
		{"SERVER_SOFTWARE", "v9"},
		{"SERVER_PROTOCOL", proto},
		{"SERVER_NAME", serverName},
		{"SERVER_PORT", serverPort},
		{"REQUEST_METHOD", r.Method},
		{"SCRIPT_NAME", script},
		{"PATH_INFO", pathInfo},
		{"PATH_TRANSLATED", pathInfo},
		{"QUERY_STRING", r.URL.RawQuery},
		{"REMOTE_ADDR", remote},
		{"REMOTE_HOST", remote},
		{"AUTH_TYPE", ""},
		{"REMOTE_USER", ""},
		{"CONTENT_TYPE", r.Header.Get("Content-Type")},
		{"CONTENT_LENGTH", strconv.Itoa(len(c.body))},
		{"X_FULL_URL", scheme + "://" + r.Host + r.URL.RequestURI()},
		{"X_RAW_PATH_INFO", rawPathInfo},
		{"X_MATCHED_ROUTE", script + "/..."},
	}
	for _, kv := range cgi {
		if err := e.add(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}

	c.stdin.Reset(c.body)
	c.ctx = ctx
	ctx = withEnviron(ctx, e)
	return experimental.WithMemoryAllocator(ctx, in.ex.mem), nil
}

// cgiNames are the variables v9 sets for every request; a manifest variable of the same name
// is overridden.
var cgiNames = map[string]bool{
	"GATEWAY_INTERFACE": true, "SERVER_SOFTWARE": true, "SERVER_PROTOCOL": true,
	"SERVER_NAME": true, "SERVER_PORT": true, "REQUEST_METHOD": true, "SCRIPT_NAME": true,
	"PATH_INFO": true, "PATH_TRANSLATED": true, "QUERY_STRING": true, "REMOTE_ADDR": true,
	"REMOTE_HOST": true, "AUTH_TYPE": true, "REMOTE_USER": true, "CONTENT_TYPE": true,
	"CONTENT_LENGTH": true, "X_FULL_URL": true, "X_RAW_PATH_INFO": true, "X_MATCHED_ROUTE": true,
}

// sleep is the guest's sleep (WASI poll_oneoff on a clock), cut short when the request's
// context is done. wazero's WithSysNanosleep is a plain time.Sleep, and
// WithCloseOnContextDone only acts when the guest runs wasm code again, so a guest sleeping
// for an hour would otherwise hold its request, and a Stop, for that hour.
func (c *call) sleep(ns int64) {
	if ns <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	done := c.ctx.Done()
	select {
	case <-t.C:
	case <-done:
	}
}

// headerEnvName maps a request header to its CGI variable: "User-Agent" → "HTTP_USER_AGENT".
// v9's own headers are dropped, and so are names with '_' (as nginx does), which could
// otherwise pose as another header's variable, and "Proxy", whose HTTP_PROXY would tell a
// guest's HTTP client to use a proxy of the caller's choosing (httpoxy).
func headerEnvName(name string) (string, bool) {
	if name == "" || strings.EqualFold(name, "Proxy") ||
		len(name) >= len(v9HeaderPrefix) && strings.EqualFold(name[:len(v9HeaderPrefix)], v9HeaderPrefix) {
		return "", false
	}
	var b strings.Builder
	b.Grow(5 + len(name))
	b.WriteString("HTTP_")
	for i := 0; i < len(name); i++ {
		switch ch := name[i]; {
		case ch == '-':
			b.WriteByte('_')
		case 'a' <= ch && ch <= 'z':
			b.WriteByte(ch - 'a' + 'A')
		case 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
			b.WriteByte(ch)
		default:
			return "", false
		}
	}
	return b.String(), true
}

// scriptName normalizes the proxy's routed prefix: "" or "/name", never a trailing slash.
func scriptName(s string) string {
	s = strings.TrimRight(s, "/")
	if s == "" || s[0] != '/' {
		return ""
	}
	return s
}

// stripScript removes the routed prefix from a path; a path outside the prefix is kept whole.
func stripScript(path, script string) string {
	if script == "" {
		return path
	}
	if rest, ok := strings.CutPrefix(path, script); ok && (rest == "" || rest[0] == '/') {
		return rest
	}
	return path
}

// splitHostPort splits "host:port", defaulting the port from the scheme.
func splitHostPort(hostport, scheme string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	switch scheme {
	case "https":
		port = "443"
	case "http":
		port = "80"
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), port
}

// cgiResponse is a parsed CGI response.
type cgiResponse struct {
	status int
	header http.Header
	body   []byte
}

// droppedHeaders are CGI response headers v9 does not pass on: hop-by-hop headers, and
// Content-Length, which v9 computes from the body it actually has.
var droppedHeaders = map[string]bool{
	"Connection":        true,
	"Content-Length":    true,
	"Keep-Alive":        true,
	"Proxy-Connection":  true,
	"Te":                true,
	"Trailer":           true,
	"Transfer-Encoding": true,
	"Upgrade":           true,
}

// maxReasonBytes bounds how much of a bad line an error quotes.
const maxReasonBytes = 64

// parseCGI splits a guest's stdout into status, headers and body. The header block is one
// or more "Name: value" lines ended by a blank line; lines end with "\n" or "\r\n". "Status"
// sets the status (200-599), "Location" without Status makes it 302, otherwise it is 200.
// The block is copied into one string that every name and value slices, and the values
// share one array: a few allocations per response, whatever its headers.
func parseCGI(out []byte) (cgiResponse, error) {
	end, lines := 0, 0 // the block's length with its blank line, and its header lines
	unended := false   // no blank line: the lines are checked, then that is the error
	for {
		i := bytes.IndexByte(out[end:], '\n')
		if i < 0 {
			if lines == 0 {
				if len(out) == 0 {
					return cgiResponse{}, errors.New("no output")
				}
				return cgiResponse{}, fmt.Errorf("no header block: output starts %q", truncate(out))
			}
			unended = true
			break
		}
		line := out[end : end+i]
		end += i + 1
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			break
		}
		lines++
	}
	if lines == 0 {
		return cgiResponse{}, errors.New("empty header block: output starts with a blank line")
	}
	res := cgiResponse{header: make(http.Header, lines), body: out[end:]}
	vals := make([]string, 0, lines)
	rest := string(out[:end])
	for range lines {
		i := strings.IndexByte(rest, '\n')
		line := strings.TrimSuffix(rest[:i], "\r")
		rest = rest[i+1:]
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return cgiResponse{}, fmt.Errorf("bad header line %q", truncate([]byte(line)))
		}
		value := strings.Trim(line[colon+1:], " \t")
		if !validValue(value) {
			return cgiResponse{}, fmt.Errorf("bad header value in line %q", truncate([]byte(line)))
		}
		name := http.CanonicalHeaderKey(line[:colon])
		switch {
		case name == "Status":
			if res.status != 0 {
				return cgiResponse{}, errors.New("more than one Status header")
			}
			status, err := parseStatus([]byte(value))
			if err != nil {
				return cgiResponse{}, err
			}
			res.status = status
		case droppedHeaders[name]:
		default:
			vals = append(vals, value)
			if old, ok := res.header[name]; ok {
				res.header[name] = append(old, value)
			} else {
				res.header[name] = vals[len(vals)-1 : len(vals) : len(vals)]
			}
		}
	}
	if unended {
		return cgiResponse{}, errors.New("header block not ended by a blank line")
	}
	if res.status == 0 {
		res.status = http.StatusOK
		if _, ok := res.header["Location"]; ok {
			res.status = http.StatusFound
		}
	}
	return res, nil
}

// parseStatus reads "404" or "404 Not Found".
func parseStatus(v []byte) (int, error) {
	code, _, _ := bytes.Cut(v, []byte(" "))
	if len(code) != 3 {
		return 0, fmt.Errorf("bad Status %q", truncate(v))
	}
	n := 0
	for _, ch := range code {
		if ch < '0' || ch > '9' {
			return 0, fmt.Errorf("bad Status %q", truncate(v))
		}
		n = n*10 + int(ch-'0')
	}
	if n < 200 || n > 599 {
		return 0, fmt.Errorf("bad Status %q: want 200-599", truncate(v))
	}
	return n, nil
}

// isToken reports whether b is an HTTP token (RFC 9110 field name).
func isToken[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if ch := b[i]; ch >= 0x80 || !tokenChars[ch] {
			return false
		}
	}
	return len(b) > 0
}

var tokenChars = func() (t [128]bool) {
	for ch := '0'; ch <= '9'; ch++ {
		t[ch] = true
	}
	for ch := 'a'; ch <= 'z'; ch++ {
		t[ch] = true
		t[ch-'a'+'A'] = true
	}
	for _, ch := range "!#$%&'*+-.^_`|~" {
		t[ch] = true
	}
	return t
}()

// validValue rejects control characters other than tab.
func validValue[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if ch := b[i]; (ch < 0x20 && ch != '\t') || ch == 0x7f {
			return false
		}
	}
	return true
}

func truncate(b []byte) []byte {
	if len(b) > maxReasonBytes {
		return b[:maxReasonBytes]
	}
	return b
}

// limitedBuffer collects a guest's stdout up to limit bytes. A write past the limit fails,
// sets overflow and calls onOverflow (which cancels the guest).
type limitedBuffer struct {
	buf        []byte
	limit      int
	overflow   bool
	onOverflow func()
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.overflow {
		return 0, errResponseTooLarge
	}
	if len(b.buf)+len(p) > b.limit {
		b.overflow = true
		if b.onOverflow != nil {
			b.onOverflow()
		}
		return 0, errResponseTooLarge
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *limitedBuffer) reset() {
	b.buf = b.buf[:0]
	b.overflow = false
	b.onOverflow = nil
}

// Bounds on a guest's stderr: a line longer than maxLineBytes is cut into pieces, and past
// maxStderrBytes per request the rest is dropped.
const (
	maxLineBytes   = 16 << 10
	maxStderrBytes = 1 << 20
)

// lineWriter turns a guest's stderr into log lines.
type lineWriter struct {
	log     func(stream, line string)
	buf     []byte
	total   int
	dropped bool
	cut     bool // the line being collected has been logged in pieces
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.log == nil {
		return n, nil
	}
	if l.total+len(p) > maxStderrBytes {
		p = p[:maxStderrBytes-l.total]
		if !l.dropped {
			l.dropped = true
			defer l.log("stderr", fmt.Sprintf("v9: stderr over %d bytes in one request; dropping the rest", maxStderrBytes))
		}
	}
	l.total += len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		l.buf = append(l.buf, seg...)
		for len(l.buf) >= maxLineBytes {
			l.log("stderr", string(l.buf[:maxLineBytes]))
			l.buf = append(l.buf[:0], l.buf[maxLineBytes:]...)
			l.cut = true
		}
		if i < 0 {
			break
		}
		p = p[i+1:]
		l.emit()
	}
	return n, nil
}

func (l *lineWriter) emit() {
	line := l.buf
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) > 0 || !l.cut { // a long line cut at an exact multiple leaves no tail
		l.log("stderr", string(line))
	}
	l.buf = l.buf[:0]
	l.cut = false
}

// flush logs a last line that had no newline.
func (l *lineWriter) flush() {
	if l.log != nil && len(l.buf) > 0 {
		l.emit()
	}
}

func (l *lineWriter) reset() {
	l.log = nil
	l.buf = l.buf[:0]
	l.total = 0
	l.dropped = false
	l.cut = false
}
