// Command loop is a bad guest: it prints its CGI headers, then never finishes. v9 must stop
// it when the request's timeout expires and answer 504.
package main

import "fmt"

func main() {
	fmt.Print("Content-Type: text/plain\n\n")
	//lint:ignore SA5002 spinning forever is what this guest is for
	for {
	}
}
