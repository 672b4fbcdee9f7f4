package wasm

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// Linear memories are recycled from one fresh instance to the next through wazero's
// experimental allocator hook: a module's memory is zeroed when its instance is closed and
// handed to the next instance, instead of being allocated (and collected) for every request.
// A guest therefore still starts with all-zero memory, as WebAssembly requires, and sees
// nothing of an earlier request's.

// maxPooledMemory bounds the memories kept for reuse; bigger ones are left to the collector.
const maxPooledMemory = 64 << 20

// memoryPool hands out recycled linear memories. It is an experimental.MemoryAllocator.
type memoryPool struct{ p sync.Pool }

var _ experimental.MemoryAllocator = (*memoryPool)(nil)

// Allocate implements experimental.MemoryAllocator.
func (mp *memoryPool) Allocate(capacity, limit uint64) experimental.LinearMemory {
	m, _ := mp.p.Get().(*linearMemory)
	if m == nil {
		m = &linearMemory{pool: mp}
	}
	m.max = limit
	if uint64(cap(m.buf)) < capacity && capacity <= maxPooledMemory {
		m.buf = make([]byte, 0, capacity)
	}
	return m
}

// linearMemory is one memory; every byte past len(buf) is zero.
type linearMemory struct {
	pool *memoryPool
	buf  []byte
	max  uint64
}

// Reallocate implements experimental.LinearMemory.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size] // the bytes gained are zero: Free cleared them, or make did
		return m.buf
	}
	grown := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.max))
	copy(grown, m.buf)
	m.buf = grown
	return m.buf
}

// Free implements experimental.LinearMemory: the memory is zeroed and kept for the next
// instance. wazero calls it once the instance is closed and no guest code runs on it.
func (m *linearMemory) Free() {
	if cap(m.buf) > maxPooledMemory {
		m.buf = nil
	} else {
		clear(m.buf)
		m.buf = m.buf[:0]
	}
	m.pool.p.Put(m)
}
