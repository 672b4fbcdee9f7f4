// Command hello-http is a warm v9 wasm component written as an ordinary net/http handler.
// The guest package turns it into a WASI reactor that v9 initializes once and then calls for
// each request (wasm.abi = "http" in v9.toml). Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello.wasm .
//
// or let `build = "go"` do it.
package main

import (
	"net/http"

	"github.com/velocity9/v9/examples/hello-http/hello"
	"github.com/velocity9/v9/guest"
)

func init() { guest.Handle(http.HandlerFunc(hello.Handler)) }

func main() {}
