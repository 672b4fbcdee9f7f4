package guest

import (
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// streamMarker opens a streamed response: the head follows it, then the body in HTTP/1.1
// chunked form, its last chunk followed by the trailers (see the package doc).
const streamMarker = "V9-Stream: chunked\r\n"

const (
	// chunkBytes: a streamed response sends what the handler wrote once this much is buffered.
	chunkBytes = 32 << 10
	// autoStreamBytes: a response body that grows past this is streamed though never flushed,
	// so that a large download does not sit whole in the guest's memory.
	autoStreamBytes = 1 << 20
)

// responseWriter collects the handler's response. Unflushed, it is sent in one write when
// the handler returns, with its length known; the first Flush (or a body past
// autoStreamBytes, or trailers) makes it a streamed response.
type responseWriter struct {
	out       io.Writer
	header    http.Header
	status    int
	body      bytes.Buffer // written by the handler and not yet sent
	enc       []byte       // the bytes of the next write to out
	streaming bool         // the head has been sent
	declared  []string     // trailer names the "Trailer" header declared when the head was sent
	err       error        // a write to out failed: the host is gone or refused more
}

var (
	_ http.Flusher                    = (*responseWriter)(nil)
	_ interface{ FlushError() error } = (*responseWriter)(nil) // http.ResponseController's
)

func (w *responseWriter) reset(out io.Writer) {
	w.out = out
	if w.header == nil {
		w.header = make(http.Header)
	}
	clear(w.header)
	w.status = 0
	w.body.Reset()
	w.streaming = false
	w.declared = w.declared[:0]
	w.err = nil
}

func (w *responseWriter) trim() {
	w.out = nil
	if cap(w.enc) > maxKeptBytes {
		w.enc = nil
	}
	if w.body.Cap() > maxKeptBytes {
		w.body = bytes.Buffer{}
	}
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(p)
	if w.streaming && w.body.Len() >= chunkBytes || w.body.Len() > autoStreamBytes {
		if err := w.FlushError(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush implements http.Flusher: the head, if not sent yet, and what the handler wrote go to
// the client now.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error, for http.ResponseController.
func (w *responseWriter) FlushError() error {
	if w.err != nil {
		return w.err
	}
	b := w.enc[:0]
	if !w.streaming {
		b, _ = w.appendHead(b, true)
	}
	b = appendChunk(b, w.body.Bytes())
	w.body.Reset()
	return w.send(b)
}

// finish sends what is left when the handler has returned.
func (w *responseWriter) finish() error {
	if w.err != nil {
		return w.err
	}
	b := w.enc[:0]
	if !w.streaming {
		if head, ok := w.appendHead(b, false); ok { // the fast path: the whole response in one write
			b = append(head, w.body.Bytes()...)
			w.body.Reset()
			return w.send(b)
		}
		b, _ = w.appendHead(b, true) // trailers: streamed
	}
	b = appendChunk(b, w.body.Bytes())
	w.body.Reset()
	b = append(b, "0\r\n"...)
	b = w.appendTrailers(b)
	b = append(b, "\r\n"...)
	return w.send(b)
}

func (w *responseWriter) send(b []byte) error {
	w.enc = b
	if len(b) == 0 {
		return nil
	}
	if _, err := w.out.Write(b); err != nil {
		w.err = err
		return err
	}
	return nil
}

// appendHead appends the CGI head: the stream marker if stream, the status, the headers
// (for a stream, less the trailers and their declaration) and the blank line. Unless
// stream, it gives up (ok false) on finding trailers, which only a stream can carry: one
// pass over the headers, as Go on wasm pays for each.
func (w *responseWriter) appendHead(b []byte, stream bool) (_ []byte, ok bool) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	if _, ok := w.header["Content-Type"]; !ok && w.body.Len() > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.body.Bytes()))
	}
	if stream {
		w.streaming = true
		b = append(b, streamMarker...)
		for _, v := range w.header["Trailer"] {
			for name := range strings.SplitSeq(v, ",") {
				if name = textproto.TrimString(name); isToken(name) {
					w.declared = append(w.declared, textproto.CanonicalMIMEHeaderKey(name))
				}
			}
		}
	}
	b = append(b, "Status: "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, "\r\n"...)
	for k, vs := range w.header {
		if k == "Trailer" || strings.HasPrefix(k, http.TrailerPrefix) || stream && slices.Contains(w.declared, k) {
			if !stream {
				return b, false
			}
			continue
		}
		for _, v := range vs {
			b = appendField(b, k, v)
		}
	}
	return append(b, "\r\n"...), true
}

// appendTrailers appends the declared trailers with their values now, and those set with
// http.TrailerPrefix, as net/http's server does. Names or values a head could not carry are
// dropped.
func (w *responseWriter) appendTrailers(b []byte) []byte {
	for _, k := range w.declared {
		for _, v := range w.header[k] {
			b = appendField(b, k, v)
		}
	}
	for k, vs := range w.header {
		name, ok := strings.CutPrefix(k, http.TrailerPrefix)
		if !ok || !isToken(name) {
			continue
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		for _, v := range vs {
			b = appendField(b, name, v)
		}
	}
	return b
}

// appendField appends "name: value\r\n". Control characters in the value become spaces,
// as net/http's server turns line breaks into spaces: a value cannot add a header line.
func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	if validValue(value) {
		b = append(b, value...)
	} else {
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
				b = append(b, ' ')
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, "\r\n"...)
}

// appendChunk appends data as one chunk; nothing if it is empty (that is the last chunk).
func appendChunk(b, data []byte) []byte {
	if len(data) == 0 {
		return b
	}
	b = strconv.AppendInt(b, int64(len(data)), 16)
	b = append(b, "\r\n"...)
	b = append(b, data...)
	return append(b, "\r\n"...)
}
