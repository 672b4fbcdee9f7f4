//go:build wasip1

package main

import (
	"io"
	"os"
)

//go:wasmexport v9_http_serve
func serve() int32 {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return 1
	}
	if _, err := os.Stdout.WriteString("Status: 200\r\nContent-Type: text/plain\r\n\r\n"); err != nil {
		return 1
	}
	if _, err := os.Stdout.Write(in); err != nil {
		return 1
	}
	return 0
}
