// Command hello-github is a v9 wasm component built by the cluster from its GitHub repository
// (v9.toml: build = "go"). It speaks CGI: the request in environment variables and stdin,
// the response headers, a blank line and the body on stdout.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Print("Content-Type: text/plain\n\n")
	fmt.Printf("hello from GitHub, %s %s\n", os.Getenv("REQUEST_METHOD"), os.Getenv("PATH_INFO"))
}
