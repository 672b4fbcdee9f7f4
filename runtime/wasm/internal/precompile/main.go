// Command precompile fills a wazero compilation cache directory with the given modules,
// compiled exactly as runtime/wasm's Executor compiles them.
//
// The tests of runtime/wasm use it: under the race detector wazero's compiler runs some
// twenty times slower (about 25 s for one Go-built module), so the tests compile their guests
// here first, without the race detector, and then load them from the cache.
//
// wazero keys its on-disk cache by its own version, which it reads from the binary's build
// information; test binaries have none and use "dev". To share a cache with a test binary,
// build this command with
//
//	-ldflags=-X=github.com/tetratelabs/wazero/internal/version.version=dev
//
// Usage: precompile -cache DIR module.wasm...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/wasm"
)

func main() {
	cacheDir := flag.String("cache", "", "wazero compilation cache directory (required)")
	flag.Parse()
	if *cacheDir == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: precompile -cache DIR module.wasm...")
		os.Exit(2)
	}
	ex, err := wasm.New(wasm.Config{CacheDir: *cacheDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "precompile:", err)
		os.Exit(1)
	}
	defer ex.Close()

	ctx := context.Background()
	errs := make([]error, flag.NArg())
	var wg sync.WaitGroup
	for i, path := range flag.Args() {
		wg.Go(func() {
			abs, err := filepath.Abs(path)
			if err != nil {
				errs[i] = err
				return
			}
			// A WASI command, or else a reactor for warm instances.
			for _, abi := range []string{"", wasm.ABIHTTP} {
				id := "precompile-" + strconv.Itoa(i) + abi
				_, err = ex.Start(ctx, runtime.Spec{
					ID:   id,
					Dir:  filepath.Dir(abs),
					Wasm: runtime.WasmSpec{Module: filepath.Base(abs), ABI: abi},
				})
				if err == nil {
					err = ex.Stop(ctx, id)
					break
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	failed := false
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(os.Stderr, "precompile %s: %v\n", flag.Arg(i), err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}
