package server

import (
	"io"

	"connectrpc.com/connect"
)

// chunkWriter turns writes into stream messages of size bytes (the last one shorter, at
// flush).
type chunkWriter struct {
	size int
	buf  []byte
	send func([]byte) error
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for len(w.buf) >= w.size {
		if err := w.send(w.buf[:w.size]); err != nil {
			return 0, err
		}
		w.buf = append([]byte(nil), w.buf[w.size:]...)
	}
	return len(p), nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = nil
	return err
}

// chunkReader reads the chunks of a client stream as one byte stream: chunk gives a
// message's bytes, or an error for a message that has no place in the stream.
type chunkReader[T any] struct {
	stream *connect.ClientStream[T]
	chunk  func(*T) ([]byte, error)
	buf    []byte
}

func (r *chunkReader[T]) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if !r.stream.Receive() {
			if err := r.stream.Err(); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		b, err := r.chunk(r.stream.Msg())
		if err != nil {
			return 0, err
		}
		r.buf = b
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
