// Command v9 is the one binary of the v9 platform: `v9 agent` runs a node, `v9 dev` runs a
// whole local cluster in one process, and the other commands are clients of any node's API.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr, true))
}
