// Command tinywasm writes a hand-assembled wasm CGI guest that answers its argument as
// text/plain, for scripts/hostile-flood.sh (no Go toolchain build of a guest needed).
package main

import (
	"os"
	"strings"

	"github.com/velocity9/v9/runtime/wasm/wasmtest"
)

func main() {
	_, _ = os.Stdout.Write(wasmtest.TinyCGI("Content-Type: text/plain\n\n" + strings.Join(os.Args[1:], " ") + "\n"))
}
