package wasm

import (
	"net/http"
	"strconv"
)

// The warm ABI's first version: a module built with a guest package older than
// v9_http_serve2 exports v9_http_serve and reads the request head as HTTP/1.1 text. Such
// modules keep serving (a deployed artifact, or a repository that pins an older v9, must not
// stop working when the nodes are upgraded); the rest of the ABI (body, response, streams) is
// the same in both versions.

// serveExportV1 is the first version's serve function.
const serveExportV1 = "v9_http_serve"

// appendWireRequest writes r's head in HTTP/1.1 form for a first-version guest: the request
// line with the original target, Host, the headers forwardHeader keeps, the client's address
// in V9-Remote-Addr, and Content-Length if it is known, else "Transfer-Encoding: chunked" (the
// guest then reads the body to its end; it gets it unframed either way).
func appendWireRequest(b []byte, r *http.Request) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	for name, vals := range r.Header {
		if !forwardHeader(http.CanonicalHeaderKey(name)) {
			continue
		}
		for _, v := range vals {
			b = append(b, name...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if host, _ := splitHostPort(r.RemoteAddr, ""); host != "" {
		b = append(b, "V9-Remote-Addr: "...)
		b = append(b, r.RemoteAddr...)
		b = append(b, "\r\n"...)
	}
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		b = append(b, "Content-Length: 0\r\n\r\n"...)
	case r.ContentLength >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
		b = append(b, "\r\n\r\n"...)
	default:
		b = append(b, "Transfer-Encoding: chunked\r\n\r\n"...)
	}
	return b
}
