package wasm

import (
	"bytes"
	"testing"
)

// A recycled memory starts all zero, within and past the size the last instance reached,
// and never grows past its limit.
func TestMemoryPoolRecyclesZeroed(t *testing.T) {
	var mp memoryPool
	m := mp.Allocate(pageSize, 4*pageSize)
	buf := m.Reallocate(pageSize)
	for i := range buf {
		buf[i] = 0xAA
	}
	buf = m.Reallocate(3 * pageSize)
	for i := range buf {
		buf[i] = 0xBB
	}
	if m.Reallocate(5*pageSize) != nil {
		t.Fatal("grew past its limit")
	}
	m.Free()

	m2 := mp.Allocate(pageSize, 4*pageSize)
	buf = m2.Reallocate(pageSize)
	if !bytes.Equal(buf, make([]byte, pageSize)) {
		t.Fatal("recycled memory is not zero")
	}
	buf = m2.Reallocate(4 * pageSize)
	if !bytes.Equal(buf, make([]byte, 4*pageSize)) {
		t.Fatal("grown recycled memory is not zero")
	}
	m2.Free()
}
