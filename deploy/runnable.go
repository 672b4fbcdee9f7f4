package deploy

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

var wasmMagic = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// CheckRunnable rejects an artifact that cannot start, before any node tries: for wasm,
// the module must exist in dir and begin with the WebAssembly header. Uploads and builds
// both call it.
func CheckRunnable(m *Manifest, dir string) error {
	if m.Runtime != RuntimeWasm {
		return nil
	}
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(m.Wasm.Module)))
	if err != nil {
		return fmt.Errorf("wasm.module %q: %v", m.Wasm.Module, err)
	}
	defer f.Close()
	head := make([]byte, len(wasmMagic))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, wasmMagic) {
		return fmt.Errorf("wasm.module %q is not a WebAssembly module (no \\0asm header)", m.Wasm.Module)
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
