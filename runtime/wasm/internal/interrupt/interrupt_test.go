package interrupt

import (
	"bytes"
	"errors"
	"testing"

	"github.com/velocity9/v9/runtime/wasm/wasmtest"
)

// Every loop gets the countdown, with the new global's index and the import's.
func TestRewriteCountsLoops(t *testing.T) {
	out, err := Rewrite(wasmtest.Spin(true, wasmtest.SpinForever...))
	if err != nil {
		t.Fatal(err)
	}
	// global 1 (after the module's own 0), sched_yield is function 0.
	check := []byte{0x23, 0x01, 0x41, 0x01, 0x6b, 0x24, 0x01, 0x23, 0x01, 0x45, 0x04, 0x40, 0x41}
	if i := bytes.Index(out, append([]byte{0x03, 0x40}, check...)); i < 0 {
		t.Fatalf("no countdown after the loop in %x", out)
	}
	if !bytes.Contains(out, []byte{0x24, 0x01, 0x10, 0x00, 0x1a, 0x0b, 0x0c, 0x00}) {
		t.Fatalf("no call to sched_yield before the loop's branch in %x", out)
	}
}

// What the rewriter cannot decode, or a module without sched_yield, is refused, not
// rewritten wrongly.
func TestRewriteRefuses(t *testing.T) {
	for name, bin := range map[string][]byte{
		"simd":         wasmtest.Spin(true, 0xfd, 0x0c, 0x0b),
		"truncated":    wasmtest.Spin(true, wasmtest.SpinForever...)[:60],
		"no magic":     []byte("not wasm at all"),
		"no yield":     wasmtest.Spin(false, wasmtest.SpinForever...),
		"gc blocktype": wasmtest.Spin(true, 0x03, 0x63, 0x00, 0x0b, 0x00, 0x0b),
	} {
		if _, err := Rewrite(bin); !errors.Is(err, ErrNotRewritable) {
			t.Errorf("%s: %v, want ErrNotRewritable", name, err)
		}
	}
}

// Rewrite reads modules uploaded by anyone: it must never panic, and what it returns must
// decode again.
func FuzzRewrite(f *testing.F) {
	f.Add(wasmtest.Spin(true, wasmtest.SpinForever...))
	f.Add(wasmtest.Spin(true, 0x02, 0x7f, 0x41, 0x01, 0x0b, 0x1a, 0x03, 0x00, 0x0e, 0x01, 0x00, 0x00, 0x0b, 0x00, 0x0b))
	f.Add(wasmtest.Spin(true, 0xfc, 0x0a, 0x00, 0x00, 0x28, 0x02, 0x10, 0x1a, 0x00, 0x0b))
	f.Add(wasmtest.TinyCGI("Status: 200\n\nhi"))
	f.Fuzz(func(t *testing.T, bin []byte) {
		out, err := Rewrite(bin)
		if err != nil {
			return
		}
		if _, err := Rewrite(out); err != nil {
			t.Fatalf("rewritten module does not decode: %v", err)
		}
	})
}
