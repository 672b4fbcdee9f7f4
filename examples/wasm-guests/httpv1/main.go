// Command httpv1 is a warm reactor of the "http" ABI's first version, as the guest package
// built it before v9_http_serve2: it exports v9_http_serve and reads the request head as
// HTTP/1.1 text. It answers with what it read (head and body), so the tests can check that
// v9 still serves such modules and what they are given. Build it with
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
package main

func main() {}
