// Package wasmtest holds tiny hand-assembled WebAssembly modules for tests: a command whose
// _start traps, and one that imports a host function v9 does not provide. It is never
// imported by the product.
package wasmtest

// header is the WebAssembly magic number and version 1.
var header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

func section(id byte, content ...byte) []byte {
	return append([]byte{id, byte(len(content))}, content...)
}

func name(s string) []byte { return append([]byte{byte(len(s))}, s...) }

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// exports names function fn "_start" and memory 0 "memory".
func exports(fn byte) []byte {
	return section(7, concat([]byte{2}, name("_start"), []byte{0x00, fn}, name("memory"), []byte{0x02, 0x00})...)
}

// Trap is a valid WASI command module, importing nothing, whose _start executes
// `unreachable`: every request to it traps.
func Trap() []byte {
	return concat(header,
		section(1, 1, 0x60, 0, 0), // one type: () -> ()
		section(3, 1, 0),          // one function of type 0
		section(5, 1, 0x00, 1),    // one memory of at least one page
		exports(0),
		section(10, 1, 3, 0, 0x00, 0x0b), // body: no locals, unreachable, end
	)
}

// ImportsUnknown is a command module that imports module.field, a host function v9 does
// not provide (as WAGI's http-example.wasm imports wasi_experimental_http).
func ImportsUnknown(module, field string) []byte {
	imp := concat([]byte{1}, name(module), name(field), []byte{0x00, 0})
	return concat(header,
		section(1, 1, 0x60, 0, 0),
		section(2, imp...),
		section(3, 1, 0),
		section(5, 1, 0x00, 1),
		exports(1), // function 0 is the import
		section(10, 1, 2, 0, 0x0b),
	)
}
