// Command garbage is a bad guest: it prints a body with no CGI header block. v9 must answer
// 502 and say why in the component's log.
package main

import "fmt"

func main() {
	fmt.Println("<h1>no headers here</h1>")
	fmt.Println("just a body that forgot its Content-Type")
}
