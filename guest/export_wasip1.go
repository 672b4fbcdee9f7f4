//go:build wasip1

package guest

import "os"

var c conn

// serve answers one request: stdin holds it, stdout gets the response (see the package doc).
//
//go:wasmexport v9_http_serve
func serve() int32 {
	if err := c.serve(os.Stdin, os.Stdout); err != nil {
		return 1
	}
	return 0
}
