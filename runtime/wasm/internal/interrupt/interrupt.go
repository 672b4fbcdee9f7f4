// Package interrupt rewrites a WebAssembly module so that it interrupts itself: at the top of
// every loop it counts down, and every Every iterations calls its own import of WASI's
// sched_yield, where the host can look at the guest, let the Go scheduler through and end it.
// It only transforms bytes: it never compiles, runs or validates a module (the runtime that
// compiles the result does).
package interrupt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Every is how many loop iterations a guest runs between two calls to sched_yield.
const Every = 1 << 14

// ErrNotRewritable is returned for a module Rewrite does not handle: it is left as it is.
var ErrNotRewritable = errors.New("module not rewritable")

// Rewrite returns bin with sched_yield called every Every loop iterations. Modules that
// import no wasi_snapshot_preview1.sched_yield, or use what it does not decode (SIMD,
// threads, exceptions, GC types), are refused with ErrNotRewritable.
func Rewrite(bin []byte) ([]byte, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" || binary.LittleEndian.Uint32(bin[4:8]) != 1 {
		return nil, fmt.Errorf("%w: not a version 1 module", ErrNotRewritable)
	}
	type section struct {
		id      byte
		content []byte
	}
	var sections []section
	r := &wasmReader{b: bin[8:]}
	for r.more() {
		id := r.byte()
		n := r.u32()
		sections = append(sections, section{id, r.bytes(int(n))})
	}
	if r.err != nil {
		return nil, r.err
	}

	// The new global's index follows the imported globals and the module's own.
	var imp imports
	var ownGlobals uint32
	globals, code := -1, -1
	for i, s := range sections {
		switch s.id {
		case 2:
			var err error
			if imp, err = readImports(s.content); err != nil {
				return nil, err
			}
		case 6:
			globals = i
			ownGlobals = (&wasmReader{b: s.content}).u32()
		case 10:
			code = i
		}
	}
	if globals < 0 || code < 0 || !imp.hasYield {
		return nil, fmt.Errorf("%w: no global section, code section or sched_yield import", ErrNotRewritable)
	}
	counter := imp.globals + ownGlobals

	out := append(make([]byte, 0, len(bin)+len(bin)/4), bin[:8]...)
	for i, s := range sections {
		content := s.content
		var err error
		switch i {
		case globals: // one more: (mut i32) initialized to Every
			g := []byte{0x7f, 0x01, 0x41}
			g = appendSLEB(g, Every)
			content = appendVec(s.content, append(g, 0x0b))
		case code:
			content, err = countLoops(s.content, counter, imp.yield)
		}
		if err != nil {
			return nil, err
		}
		if content == nil {
			return nil, ErrNotRewritable
		}
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(content)))
		out = append(out, content...)
	}
	return out, nil
}

// appendSLEB appends v as a signed LEB128.
func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// appendVec returns vec (a count and its entries) with one more entry; nil if vec is malformed.
func appendVec(vec, entry []byte) []byte {
	r := &wasmReader{b: vec}
	n := r.u32()
	if r.err != nil || n == 1<<32-1 {
		return nil
	}
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, vec[r.off:]...)
	return append(out, entry...)
}

// imports is what Rewrite needs of an import section.
type imports struct {
	globals  uint32 // imported globals
	yield    uint32 // the function index of wasi_snapshot_preview1.sched_yield
	hasYield bool
}

// readImports reads an import section.
func readImports(b []byte) (imports, error) {
	r := &wasmReader{b: b}
	var imp imports
	var funcs uint32
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		mod := string(r.bytes(int(r.u32())))
		name := string(r.bytes(int(r.u32())))
		switch r.byte() {
		case 0x00: // function
			r.u32()
			if mod == "wasi_snapshot_preview1" && name == "sched_yield" {
				imp.yield, imp.hasYield = funcs, true
			}
			funcs++
		case 0x01: // table
			r.byte()
			r.limits()
		case 0x02: // memory
			r.limits()
		case 0x03: // global
			r.byte()
			r.byte()
			imp.globals++
		default:
			r.fail()
		}
	}
	return imp, r.err
}

// countLoops rewrites a code section: at the top of every loop, counter is decremented and,
// when it reaches zero, reset and function yield called (its i32 result dropped). The
// counter is read right after it is written, in the same block, so the compiler keeps it in
// a register: a load, a subtraction, a store and a branch per iteration.
func countLoops(b []byte, counter, yield uint32) ([]byte, error) {
	g := binary.AppendUvarint(nil, uint64(counter))
	check := append([]byte{0x23}, g...)                              // global.get
	check = append(append(check, 0x41, 0x01, 0x6b, 0x24), g...)      // i32.const 1; i32.sub; global.set
	check = append(append(check, 0x23), g...)                        // global.get
	check = appendSLEB(append(check, 0x45, 0x04, 0x40, 0x41), Every) // i32.eqz; if; i32.const Every
	check = append(append(check, 0x24), g...)                        // global.set
	check = binary.AppendUvarint(append(check, 0x10), uint64(yield)) // call yield
	check = append(check, 0x1a, 0x0b)                                // drop; end
	r := &wasmReader{b: b}
	n := r.u32()
	out := binary.AppendUvarint(make([]byte, 0, len(b)+len(b)/4), uint64(n))
	var body []byte
	for ; n > 0 && r.err == nil; n-- {
		f := &wasmReader{b: r.bytes(int(r.u32()))}
		for locals := f.u32(); locals > 0 && f.err == nil; locals-- {
			f.u32()
			f.byte()
		}
		body = append(body[:0], f.b[:f.off]...)
		for f.more() {
			start := f.off
			loop := f.instruction()
			body = append(body, f.b[start:f.off]...)
			if loop {
				body = append(body, check...)
			}
		}
		if f.err != nil {
			return nil, f.err
		}
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if r.err == nil && r.more() {
		r.fail()
	}
	return out, r.err
}

// wasmReader decodes the binary format; the first error sticks and reads then return zero.
type wasmReader struct {
	b   []byte
	off int
	err error
}

func (r *wasmReader) more() bool { return r.err == nil && r.off < len(r.b) }

func (r *wasmReader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: cannot decode at byte %d", ErrNotRewritable, r.off)
	}
	r.off = len(r.b)
}

func (r *wasmReader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *wasmReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.off {
		r.fail()
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *wasmReader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				r.fail()
			}
			return uint32(v)
		}
	}
	r.fail()
	return 0
}

// leb skips a LEB128 of at most 64 bits, signed or not.
func (r *wasmReader) leb() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail()
}

func (r *wasmReader) limits() {
	flags := r.byte()
	if flags > 0x07 {
		r.fail()
	}
	r.leb()
	if flags&1 != 0 {
		r.leb()
	}
}

// blockType skips a block type: empty, a value type or a type index.
func (r *wasmReader) blockType() {
	c := r.byte()
	switch {
	case c == 0x40 || c == 0x7f || c == 0x7e || c == 0x7d || c == 0x7c || c == 0x70 || c == 0x6f:
	case c < 0x40: // a type index of one byte
	case c&0x80 != 0: // a longer type index
		r.leb()
	default: // v128 (0x7b) is SIMD; other types are the GC proposal's
		r.fail()
	}
}

// instruction skips one instruction and reports whether it was a loop.
func (r *wasmReader) instruction() (loop bool) {
	op := r.byte()
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b ||
		op == 0xd1 || op >= 0x45 && op <= 0xc4:
		// unreachable, nop, else, end, return, drop, select, ref.is_null, numeric operators
	case op == 0x02 || op == 0x04: // block, if
		r.blockType()
	case op == 0x03:
		r.blockType()
		return true
	case op == 0x0c || op == 0x0d || op == 0x10 || op == 0x12 || op >= 0x20 && op <= 0x26 || op == 0xd2:
		// br, br_if, call, return_call, local.*, global.*, table.get/set, ref.func
		r.u32()
	case op == 0x0e: // br_table
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select with types
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.byte()
		}
	case op >= 0x28 && op <= 0x3e: // loads and stores: alignment (and memory index), offset
		if r.u32()&0x40 != 0 {
			r.u32()
		}
		r.leb()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41 || op == 0x42: // i32.const, i64.const
		r.leb()
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null
		r.byte()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7: // saturating truncations
		case sub == 8 || sub == 10 || sub == 12 || sub == 14: // memory.init, memory.copy, table.init, table.copy
			r.u32()
			r.u32()
		case sub <= 17: // data.drop, memory.fill, elem.drop, table.grow, table.size, table.fill
			r.u32()
		default:
			r.fail()
		}
	default: // SIMD, threads, exceptions, GC: not rewritten
		r.fail()
	}
	return false
}
