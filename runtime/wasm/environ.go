package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The guest's environment is built once per request, in one pass, into the request's pooled
// call (environ), and handed to the guest by v9's own environ_get and environ_sizes_get,
// which replace wazero's in the wasi_snapshot_preview1 host module. wazero's
// ModuleConfig.WithEnv copies the whole module configuration for every variable, which made
// the environment cost quadratic in the number of request headers and most of a small
// guest's per-request time.

// environ is an environment as WASI hands it over: "key=value\x00" entries back to back.
type environ struct {
	buf  []byte
	offs []uint32 // where each entry starts in buf
}

func (e *environ) reset() {
	e.buf = e.buf[:0]
	e.offs = e.offs[:0]
}

// add appends key=value. Keys are checked when the manifest is started or come from v9;
// values must not hold a NUL, which would end the entry early.
func (e *environ) add(key, value string) error {
	if strings.IndexByte(value, 0) >= 0 {
		return fmt.Errorf("bad request: NUL byte in %s", key)
	}
	e.offs = append(e.offs, uint32(len(e.buf)))
	e.buf = append(e.buf, key...)
	e.buf = append(e.buf, '=')
	e.buf = append(e.buf, value...)
	e.buf = append(e.buf, 0)
	return nil
}

// has reports whether key is set.
func (e *environ) has(key string) bool {
	for i, o := range e.offs {
		end := len(e.buf)
		if i+1 < len(e.offs) {
			end = int(e.offs[i+1])
		}
		entry := e.buf[o:end]
		if len(entry) > len(key) && entry[len(key)] == '=' && string(entry[:len(key)]) == key {
			return true
		}
	}
	return false
}

// environKey carries the request's environment to the host functions through the context
// the module is instantiated with (wazero passes it to every host call during _start).
type environKey struct{}

func withEnviron(ctx context.Context, e *environ) context.Context {
	return context.WithValue(ctx, environKey{}, e)
}

func environFrom(ctx context.Context) *environ {
	e, _ := ctx.Value(environKey{}).(*environ)
	if e == nil {
		return &environ{}
	}
	return e
}

// WASI preview1 errno for a guest pointer outside its memory.
const errnoFault = 21

// instantiateWASI instantiates wasi_snapshot_preview1 in rt with v9's environment functions
// and sched_yield (interrupt.go).
func instantiateWASI(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	i32 := api.ValueTypeI32
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(environSizesGet), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("result.environc", "result.environv_len").
		Export("environ_sizes_get")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(environGet), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("environ", "environ_buf").
		Export("environ_get")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(schedYield), nil, []api.ValueType{i32}).
		Export("sched_yield")
	_, err := b.Instantiate(ctx)
	return err
}

func environSizesGet(ctx context.Context, mod api.Module, stack []uint64) {
	e := environFrom(ctx)
	mem := mod.Memory()
	if mem == nil || !mem.WriteUint32Le(uint32(stack[0]), uint32(len(e.offs))) ||
		!mem.WriteUint32Le(uint32(stack[1]), uint32(len(e.buf))) {
		stack[0] = errnoFault
		return
	}
	stack[0] = 0
}

func environGet(ctx context.Context, mod api.Module, stack []uint64) {
	e := environFrom(ctx)
	mem := mod.Memory()
	environ, environBuf := uint32(stack[0]), uint32(stack[1])
	if mem == nil {
		stack[0] = errnoFault
		return
	}
	offs, ok1 := mem.Read(environ, uint32(4*len(e.offs)))
	buf, ok2 := mem.Read(environBuf, uint32(len(e.buf)))
	if !ok1 || !ok2 {
		stack[0] = errnoFault
		return
	}
	for i, o := range e.offs {
		binary.LittleEndian.PutUint32(offs[4*i:], environBuf+o)
	}
	copy(buf, e.buf)
	stack[0] = 0
}
