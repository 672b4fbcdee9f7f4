package wasm

import (
	"bytes"
	"net/http/httputil"
	"reflect"
	"testing"
)

// parsed is what a chunkParser made of a stream.
type parsed struct {
	head, data []byte
	trailer    map[string][]string
	done       bool
	err        bool
}

// parseStream feeds b to a new chunkParser in pieces of n bytes (all at once for n <= 0).
func parseStream(b []byte, n int) parsed {
	var out parsed
	c := chunkParser{
		onHead: func(h []byte) error { out.head = append([]byte(nil), h...); return nil },
		onData: func(d []byte) error { out.data = append(out.data, d...); return nil },
	}
	c.reset()
	if n <= 0 {
		n = len(b) + 1
	}
	for len(b) > 0 && !out.err {
		k := min(n, len(b))
		out.err = c.feed(b[:k]) != nil
		b = b[k:]
	}
	out.trailer, out.done = c.trailer, c.done()
	return out
}

// The streamed-response parser makes the same of a stream whatever pieces it comes in, and
// gets back exactly what a chunked writer encoded, with its trailers.
func FuzzChunkParser(f *testing.F) {
	f.Add([]byte("Status: 200\r\nX: y\r\n\r\n4\r\nping\r\n0\r\nX-Sum: 1\r\n\r\n"), []byte("hello"), uint16(3))
	f.Add([]byte("Status: 200\n\n5;ext=1\npong!\n0\n\n"), []byte(""), uint16(1))
	f.Add([]byte("Status: 200\r\n\r\nzz\r\n"), []byte("x"), uint16(0))
	f.Add([]byte("Status: 200\r\n\r\n0\r\n\r\nmore"), bytes.Repeat([]byte("a"), 70000), uint16(4096))
	f.Fuzz(func(t *testing.T, raw, payload []byte, split uint16) {
		whole := parseStream(raw, 0)
		if pieces := parseStream(raw, int(split)); !reflect.DeepEqual(whole, pieces) {
			t.Fatalf("%q: whole %+v, in pieces of %d %+v", raw, whole, split, pieces)
		}

		var enc bytes.Buffer
		enc.WriteString("Status: 200\r\n\r\n")
		cw := httputil.NewChunkedWriter(&enc)
		for rest, k := payload, int(split%9)+1; len(rest) > 0; rest = rest[min(k, len(rest)):] {
			_, _ = cw.Write(rest[:min(k, len(rest))])
		}
		_ = cw.Close()
		enc.WriteString("X-Sum: v\r\n\r\n")
		got := parseStream(enc.Bytes(), int(split))
		if got.err || !got.done || !bytes.Equal(got.data, payload) || got.trailer["X-Sum"][0] != "v" ||
			string(got.head) != "Status: 200\n\n" {
			t.Fatalf("payload %q in pieces of %d: %+v", payload, split, got)
		}
	})
}
