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
// v9_http_serve, until v9 discards it. For each call the host points the guest's stdin at
// the request in HTTP/1.1 wire form (request line with the full original path, Host, the
// headers, Content-Length and the body) and collects stdout, where the guest writes a CGI
// response ("Status: 200" and the headers, a blank line, the body), which v9 parses exactly
// as it parses a WAGI module's. The handler sees what net/http's server would give it: the
// Host header in Request.Host, not in Header. The call returns 0; anything else, or a trap,
// is a failed request and the instance is discarded. stderr goes to the component's log.
// Bodies are buffered whole in both directions, under the limits v9 sets for WAGI; trailers
// are not carried.
//
// It must never import anything but the standard library, so any module can use it.
package guest

import (
	"net/http"
	"sync"
)

var (
	mu      sync.Mutex
	handler http.Handler = http.NotFoundHandler()
)

// Handle sets the handler that serves every request. Call it from an init function.
func Handle(h http.Handler) {
	mu.Lock()
	defer mu.Unlock()
	handler = h
}

func current() http.Handler {
	mu.Lock()
	defer mu.Unlock()
	return handler
}
