// Command echo answers with the request body, under the request's Content-Type.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read stdin:", err)
		os.Exit(1)
	}
	ct := os.Getenv("CONTENT_TYPE")
	if ct == "" {
		ct = "application/octet-stream"
	}
	fmt.Printf("Content-Type: %s\nX-Content-Length: %s\n\n", ct, os.Getenv("CONTENT_LENGTH"))
	os.Stdout.Write(body)
}
