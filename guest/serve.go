package guest

import (
	"encoding/binary"
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

// readHead reads the framed request head from in (see request.go): head is what follows its
// length, rest what was read past it, the start of the body. A stream that ends first is
// an error.
func (c *conn) readHead(in io.Reader) (head, rest []byte, err error) {
	if c.in == nil {
		c.in = make([]byte, 0, 16<<10)
	}
	b := c.in[:0]
	for {
		if len(b) >= 4 {
			n := int(binary.LittleEndian.Uint32(b))
			if n > maxHeadBytes {
				return nil, nil, errHeadTooLarge
			}
			if len(b) >= 4+n {
				c.in = b
				return b[4 : 4+n], b[4+n:], nil
			}
			if cap(b) < 4+n {
				b = append(b, make([]byte, 4+n-len(b))...)[:len(b)]
			}
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := in.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF && n == 0 {
			c.in = b
			return nil, nil, io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return nil, nil, err
		}
	}
}

var errHeadTooLarge = errors.New("guest: request head too large")

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
