// Command hello is the smallest v9 wasm component: a WASI preview1 command that speaks CGI
// the way WAGI does (request in environment variables and stdin, response headers, a blank
// line and the body on stdout). Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -o hello.wasm .
//
// and deploy the directory; v9.toml names hello.wasm.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Print("Content-Type: text/plain\n\n")
	msg := "hello from wasm"
	if g := os.Getenv("GREETING"); g != "" {
		msg += " " + g
	}
	if p := os.Getenv("PATH_INFO"); p != "" {
		msg += " " + p
	}
	fmt.Println(msg)
}
