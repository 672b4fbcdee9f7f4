package guest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
)

// conn is the scratch state of the requests an instance serves, one at a time, kept from one
// to the next so that a request allocates little.
type conn struct {
	in   []byte // the request head as read, and any body bytes read with it
	body body
	w    responseWriter
}

// maxKeptBytes bounds the buffers kept between requests.
const maxKeptBytes = 1 << 20

// maxHeadBytes bounds a request head (v9's proxy bounds it far lower).
const maxHeadBytes = 1 << 20

// serve answers one request: the head, then the body until EOF, from in; the response to out.
func (c *conn) serve(in io.Reader, out io.Writer) error {
	defer c.trim()
	head, rest, err := c.readHead(in)
	if err != nil {
		return err
	}
	req, err := parseRequest(head)
	if err != nil {
		_, werr := io.WriteString(out, "Status: 400\r\nContent-Type: text/plain\r\n\r\nbad request\n")
		return werr
	}
	if addr, ok := req.Header[remoteAddrHeader]; ok {
		req.RemoteAddr = addr[0]
		delete(req.Header, remoteAddrHeader)
	}
	req.Body = http.NoBody
	if req.ContentLength != 0 {
		c.body = body{buf: rest, in: in}
		req.Body = &c.body
	}
	c.w.reset(out)
	current().ServeHTTP(&c.w, req) // a panic ends the instance; the host answers 500
	c.body = body{closed: true}    // what the handler left unread is the host's to drop
	return c.w.finish()
}

// readHead reads from in up to and including the blank line that ends the request head.
// rest is what was read past it: the start of the body.
func (c *conn) readHead(in io.Reader) (head, rest []byte, err error) {
	if c.in == nil {
		c.in = make([]byte, 0, 16<<10)
	}
	b := c.in[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		from := max(0, len(b)-3)
		n, err := in.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if i := bytes.Index(b[from:], []byte("\r\n\r\n")); i >= 0 {
			c.in = b
			end := from + i + 4
			return b[:end], b[end:], nil
		}
		if err == io.EOF || len(b) > maxHeadBytes {
			c.in = b
			return b, nil, nil // not a request: parseRequest refuses it
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

func (c *conn) trim() {
	if cap(c.in) > maxKeptBytes {
		c.in = nil
	}
	c.w.trim()
}

// body is a request's body: the bytes read with the head, then in until EOF (the host ends
// the stream where the body ends).
type body struct {
	buf    []byte
	in     io.Reader
	eof    bool
	closed bool
}

var errBodyClosed = errors.New("guest: read on a closed or finished request body")

func (b *body) Read(p []byte) (int, error) {
	switch {
	case b.closed:
		return 0, errBodyClosed
	case len(b.buf) > 0:
		n := copy(p, b.buf)
		b.buf = b.buf[n:]
		return n, nil
	case b.eof:
		return 0, io.EOF
	}
	n, err := b.in.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close implements io.Closer: the handler is done with the body.
func (b *body) Close() error {
	b.closed = true
	return nil
}

const remoteAddrHeader = "V9-Remote-Addr"
