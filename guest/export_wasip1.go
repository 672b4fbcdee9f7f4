//go:build wasip1

package guest

import (
	"io"
	"syscall"
)

var c conn

// serve answers one request: stdin holds it, stdout gets the response (see the package doc).
//
//go:wasmexport v9_http_serve2
func serve() int32 {
	if err := c.serve(stdin{}, stdout{}); err != nil {
		return 1
	}
	return 0
}

// stdin and stdout read and write the WASI descriptors 0 and 1 directly: os.Stdin and
// os.Stdout go through internal/poll's locking and bookkeeping on every call, which Go
// compiled to wasm pays for in microseconds per request.
type (
	stdin  struct{}
	stdout struct{}
)

func (stdin) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := syscall.Read(0, p)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (stdout) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := syscall.Write(1, p[written:])
		written += n
		if err != nil {
			return written, err
		}
		if n == 0 {
			return written, io.ErrShortWrite
		}
	}
	return written, nil
}
