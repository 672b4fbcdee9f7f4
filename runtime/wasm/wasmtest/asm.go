// Package wasmtest assembles tiny WebAssembly modules by hand, for tests and benchmarks that
// need a guest without a compiler: enough for modules whose sections and strings are under
// 128 bytes. It is never used by the product.
package wasmtest

// Header is the magic number and version every module starts with.
var Header = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// Section encodes one section with a one-byte size.
func Section(id byte, content ...byte) []byte {
	return append([]byte{id, byte(len(content))}, content...)
}

// Str encodes a name with a one-byte length.
func Str(s string) []byte { return append([]byte{byte(len(s))}, s...) }

// Cat concatenates byte slices.
func Cat(parts ...[]byte) (b []byte) {
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TinyCGI is a WASI command that writes out (at most 100 bytes: a CGI response) to stdout
// with one fd_write and returns.
func TinyCGI(out string) []byte {
	if len(out) > 100 {
		panic("TinyCGI: output too long for one-byte sizes")
	}
	return Cat(
		Header,
		Section(1, 0x02, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00),
		Section(2, Cat([]byte{0x01}, Str("wasi_snapshot_preview1"), Str("fd_write"), []byte{0x00, 0x00})...),
		Section(3, 0x01, 0x01),
		Section(5, 0x01, 0x00, 0x01),
		Section(7, Cat([]byte{0x02}, Str("_start"), []byte{0x00, 0x01}, Str("memory"), []byte{0x02, 0x00})...),
		Section(10, 0x01, 0x0d, 0x00, 0x41, 0x01, 0x41, 0x00, 0x41, 0x01, 0x41, 0x08, 0x10, 0x00, 0x1a, 0x0b),
		Section(11, Cat(
			[]byte{0x02},
			[]byte{0x00, 0x41, 0x00, 0x0b, 0x08, 0x10, 0x00, 0x00, 0x00, byte(len(out)), 0x00, 0x00, 0x00},
			[]byte{0x00, 0x41, 0x10, 0x0b}, Str(out))...),
	)
}

// Spin is a module with one function of the given body, () -> i32, exported as "spin", and
// one mutable i32 global; it imports WASI's sched_yield (the same type) first if yield is set.
func Spin(yield bool, body ...byte) []byte {
	imports, spin := []byte{}, byte(0)
	if yield {
		imports = Section(2, Cat([]byte{0x01}, Str("wasi_snapshot_preview1"), Str("sched_yield"), []byte{0x00, 0x00})...)
		spin = 1
	}
	return Cat(
		Header,
		Section(1, 0x01, 0x60, 0x00, 0x01, 0x7f),
		imports,
		Section(3, 0x01, 0x00),
		Section(6, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b),
		Section(7, Cat([]byte{0x01}, Str("spin"), []byte{0x00, spin})...),
		Section(10, Cat([]byte{0x01, byte(len(body) + 1), 0x00}, body)...),
	)
}

// SpinForever is a body for Spin that loops forever: loop br 0 end unreachable.
var SpinForever = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x00, 0x0b}
