package wasmtest

import (
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/velocity9/v9/runtime/wasm"
)

func TestModules(t *testing.T) {
	ctx := context.Background()
	if err := wasm.CheckModule(ctx, "trap.wasm", Trap()); err != nil {
		t.Fatalf("Trap is not runnable: %v", err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	_, err := rt.InstantiateWithConfig(ctx, Trap(), wazero.NewModuleConfig())
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Trap does not trap: %v", err)
	}
	err = wasm.CheckModule(ctx, "wagi.wasm", ImportsUnknown("wasi_experimental_http", "req"))
	if err == nil || !strings.Contains(err.Error(), "wasi_experimental_http.req") {
		t.Fatalf("the unknown import is not named: %v", err)
	}
}
