package wasm

import "encoding/binary"

// startSectionID is the WebAssembly binary format's start section: a function the module
// runs while it is instantiated, before any export is called.
const startSectionID = 8

// hasStartSection reports whether a WebAssembly binary has a start section, that is,
// whether instantiating it executes guest code. A binary it cannot walk to its end counts
// as having one, the cautious answer (compilation rejects such a binary anyway).
func hasStartSection(bin []byte) bool {
	if len(bin) < 8 {
		return true
	}
	for p := bin[8:]; len(p) > 0; {
		id := p[0]
		size, n := binary.Uvarint(p[1:]) // section sizes are unsigned LEB128, as Uvarint reads
		if n <= 0 || size > uint64(len(p)-1-n) {
			return true
		}
		if id == startSectionID {
			return true
		}
		p = p[1+n+int(size):]
	}
	return false
}
