// Package guest turns an ordinary net/http Handler into a warm v9 wasm component (the
// component's manifest says wasm.abi = "http"). Register the handler from an init function;
// main is not run in a reactor:
//
//	func init() { guest.Handle(http.HandlerFunc(hello)) }
//	func main() {}
//
// and build a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o app.wasm .
//
// (`build = "go"` in v9.toml does this when wasm.abi = "http").
//
// # The ABI ("http", v9's own)
//
// The module is initialized once (_initialize: the Go runtime and the package initializers)
// and then answers requests one at a time, each through one call of its export
// v9_http_serve2, until v9 discards it. The call returns 0; anything else, or a trap, is a
// failed request and the instance is discarded. stderr goes to the component's log.
//
// stdin carries the request: its head framed as length-prefixed fields (method, target,
// Host, the client's address, the length or -1 when unknown, the headers; request.go has
// the layout), which the guest slices into an http.Request without parsing HTTP, then the
// body's bytes, unframed, as the client sends them, then EOF where the body ends. The
// handler reads its body from there as it goes; what it leaves unread is dropped by v9.
// The handler sees what net/http's server would give it: the Host header in Request.Host,
// not in Header. (The ABI's first version, v9_http_serve, sent the head as HTTP/1.1 text,
// which the guest spent most of a small handler's time parsing. v9 still serves a module
// built with that guest package, at the old cost; rebuild with this one to get the new.)
//
// stdout carries the response, in one of two forms:
//
//   - buffered, when the handler never flushed: a CGI response ("Status: 200" and the
//     headers, a blank line, the body) in one write when the handler returns, which v9
//     parses exactly as it parses a WAGI module's and sends with its length;
//   - streamed, from the handler's first Flush (http.Flusher or http.ResponseController),
//     or once its body passes 1 MiB, or when it set trailers: the line "V9-Stream: chunked",
//     the CGI head, then the body in HTTP/1.1 chunked form, one chunk per flush, the last
//     (empty) chunk followed by the trailers and a blank line. v9 sends each piece to the
//     client as it arrives.
//
// Trailers are set as with net/http's server: named in the "Trailer" header before the
// head is sent, or under http.TrailerPrefix at any time. v9's limits for WAGI hold for both:
// a body past the request limit is answered 413, and a response past the size limit or the
// timeout is cut (a streamed one is aborted, so the client sees it was cut short).
//
// It must never import anything but the standard library, so any module can use it.
package guest

import (
	"net/http"
	"sync/atomic"
)

// handler is the http.Handler that serves every request; nil until Handle.
var handler atomic.Pointer[http.Handler]

// Handle sets the handler that serves every request. Call it from an init function.
func Handle(h http.Handler) { handler.Store(&h) }

func current() http.Handler {
	if h := handler.Load(); h != nil {
		return *h
	}
	return http.NotFoundHandler()
}
