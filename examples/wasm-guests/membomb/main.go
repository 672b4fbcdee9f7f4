// Command membomb is a bad guest: it allocates memory until none is left, saying on stderr
// how far it got. v9 must stop it at the component's memory limit (the Go runtime then
// aborts) without harm to the node.
package main

import (
	"fmt"
	"os"
)

var hold [][]byte

func main() {
	for mib := 1; ; mib++ {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(i)
		}
		hold = append(hold, b)
		fmt.Fprintf(os.Stderr, "allocated %d MiB\n", mib)
	}
}
