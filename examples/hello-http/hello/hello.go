// Package hello is the handler of examples/hello-http, in a package of its own so that the
// benchmarks can serve the very same handler natively.
package hello

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
)

// served counts the requests this instance has answered: state that lives as long as the
// warm instance (with wasm.reuse = 1 every request sees 1).
var served atomic.Int64

// Handler answers "hello from wasm [GREETING] PATH". ?do=trap panics (a warm instance is then
// discarded), ?do=log writes a line to stderr and ?do=spin computes until it is stopped.
func Handler(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("do") {
	case "trap":
		panic("asked to trap")
	case "log":
		fmt.Fprintln(os.Stderr, "hello-http: log line")
	case "spin":
		for served.Load() >= 0 { // until v9 stops it
		}
	}
	n := served.Add(1)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Served", strconv.FormatInt(n, 10))
	msg := "hello from wasm"
	if g := os.Getenv("GREETING"); g != "" {
		msg += " " + g
	}
	fmt.Fprintf(w, "%s %s\n", msg, r.URL.Path)
}
