package guest

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// conn is one request's scratch state, reused from call to call.
type conn struct {
	in  []byte // the request as read
	out []byte // the response as written
	w   responseWriter
}

// Buffers that grew past this for one big request are not kept for the next.
const maxKeptBytes = 1 << 20

// serve reads one request from in, runs the handler and writes the CGI response to out.
func (c *conn) serve(in io.Reader, out io.Writer) error {
	defer c.trim()
	if err := c.read(in); err != nil {
		return err
	}
	req, err := parseRequest(c.in)
	if err != nil {
		_, werr := io.WriteString(out, "Status: 400\r\nContent-Type: text/plain\r\n\r\nbad request\n")
		return werr
	}
	if addr, ok := req.Header[remoteAddrHeader]; ok {
		req.RemoteAddr = addr[0]
		delete(req.Header, remoteAddrHeader)
	}
	c.w.reset()
	current().ServeHTTP(&c.w, req) // a panic ends the instance; the host answers 500
	_, _ = io.Copy(io.Discard, req.Body)

	c.out = c.w.encode(c.out[:0])
	_, err = out.Write(c.out)
	return err
}

// read reads in whole into c.in.
func (c *conn) read(in io.Reader) error {
	if c.in == nil {
		c.in = make([]byte, 0, 16<<10)
	}
	b := c.in[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := in.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			c.in = b
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// trim drops what one big request grew.
func (c *conn) trim() {
	if cap(c.in) > maxKeptBytes {
		c.in = nil
	}
	if cap(c.out) > maxKeptBytes {
		c.out = nil
	}
	if c.w.body.Cap() > maxKeptBytes {
		c.w.body = bytes.Buffer{}
	}
}

// remoteAddrHeader carries the client's address from the host; it never reaches the handler.
const remoteAddrHeader = "V9-Remote-Addr"

// responseWriter buffers a handler's response.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *responseWriter) reset() {
	if w.header == nil {
		w.header = make(http.Header)
	}
	clear(w.header)
	w.status = 0
	w.body.Reset()
}

// encode appends the response in CGI form to b.
func (w *responseWriter) encode(b []byte) []byte {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	if _, ok := w.header["Content-Type"]; !ok && w.body.Len() > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.body.Bytes()))
	}
	b = append(b, "Status: "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, "\r\n"...)
	for k, vs := range w.header {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	return append(b, w.body.Bytes()...)
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}
