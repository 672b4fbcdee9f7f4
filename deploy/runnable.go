package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/runtime/wasm"
)

// CheckRunnable rejects an artifact that cannot start, before any node tries: for wasm,
// the module must exist in dir and be one v9 can run (wasm.CheckModule: valid WebAssembly
// that imports nothing but WASI preview1, so a module importing another host's functions
// fails here with the import named). Uploads and builds both call it.
func CheckRunnable(m *Manifest, dir string) error {
	if m.Runtime != RuntimeWasm {
		return nil
	}
	bin, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(m.Wasm.Module)))
	if err != nil {
		return fmt.Errorf("wasm.module %q: %v", m.Wasm.Module, err)
	}
	if err := wasm.CheckModule(context.Background(), m.Wasm.Module, bin); err != nil {
		return fmt.Errorf("wasm.module: %w", err)
	}
	return nil
}

// RuntimeName is the manifest's word for a runtime, for messages.
func RuntimeName(rt statev1.Runtime) string {
	switch rt {
	case statev1.Runtime_RUNTIME_WASM:
		return RuntimeWasm
	case statev1.Runtime_RUNTIME_CONTAINER:
		return RuntimeContainer
	}
	return "an unknown runtime"
}
