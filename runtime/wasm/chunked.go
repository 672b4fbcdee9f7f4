package wasm

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
)

// streamMarker opens a warm guest's streamed response (the guest package's format): a CGI
// head follows, then the body in HTTP/1.1 chunked form, the last chunk followed by trailer
// lines and a blank line.
const streamMarker = "V9-Stream: chunked\r\n"

// Bounds on a streamed response's framing lines: the head's lines as parseCGI's, a chunk
// size line far shorter.
const (
	maxStreamHeadBytes = 64 << 10
	maxChunkLineBytes  = 1 << 10
)

// chunkParser reads a streamed response as the guest writes it, in pieces of any size: it
// hands the head to onHead once complete, then each piece of body data to onData, and
// collects the trailers. It does no I/O itself.
type chunkParser struct {
	onHead func(head []byte) error
	onData func(data []byte) error

	state   chunkState
	line    []byte // a line being collected
	head    []byte // the head's lines so far
	left    int64  // data bytes left in the current chunk
	trailer http.Header
}

type chunkState uint8

const (
	inHead    chunkState = iota // head lines, up to a blank line
	inSize                      // a chunk-size line
	inData                      // chunk data
	inDataEnd                   // the CRLF after a chunk's data
	inTrailer                   // trailer lines, up to a blank line
	inDone                      // after the blank line that ends the trailers
	inBroken                    // after a framing error
)

var errAfterLastChunk = errors.New("output after the last chunk")

// done reports whether the stream has ended properly.
func (c *chunkParser) done() bool { return c.state == inDone }

// reset readies c for a new stream.
func (c *chunkParser) reset() {
	c.state = inHead
	c.line = c.line[:0]
	c.head = c.head[:0]
	c.left = 0
	c.trailer = nil
}

// feed consumes p. An error is final: every later feed returns one too.
func (c *chunkParser) feed(p []byte) error {
	for len(p) > 0 {
		switch c.state {
		case inBroken:
			return errors.New("stream already broken")
		case inDone:
			c.state = inBroken
			return errAfterLastChunk
		case inData:
			n := min(int64(len(p)), c.left)
			c.left -= n
			if c.left == 0 {
				c.state = inDataEnd
			}
			if err := c.onData(p[:n]); err != nil {
				c.state = inBroken
				return err
			}
			p = p[n:]
			continue
		}
		line, rest, ok := c.takeLine(p)
		p = rest
		// One bound whether a line comes whole or in pieces (measured without its "\n").
		n := len(line)
		if !ok {
			n = len(c.line)
		}
		if n > c.lineBound() {
			c.state = inBroken
			return fmt.Errorf("stream line longer than %d bytes", c.lineBound())
		}
		if !ok {
			return nil
		}
		if err := c.onLine(bytes.TrimSuffix(line, []byte("\r"))); err != nil {
			c.state = inBroken
			return err
		}
	}
	return nil
}

func (c *chunkParser) lineBound() int {
	if c.state == inHead || c.state == inTrailer {
		return maxStreamHeadBytes
	}
	return maxChunkLineBytes
}

// takeLine returns the next whole line (without its "\n") and what follows it; false, with the piece kept in c.line, if p ends first.
func (c *chunkParser) takeLine(p []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		c.line = append(c.line, p...)
		return nil, nil, false
	}
	line, rest = p[:i], p[i+1:]
	if len(c.line) > 0 {
		c.line = append(c.line, line...)
		line = c.line
		c.line = c.line[:0] // line stays valid until the next append
	}
	return line, rest, true
}

func (c *chunkParser) onLine(line []byte) error {
	switch c.state {
	case inHead:
		c.head = append(c.head, line...)
		c.head = append(c.head, '\n')
		if len(c.head) > maxStreamHeadBytes {
			return fmt.Errorf("stream head longer than %d bytes", maxStreamHeadBytes)
		}
		if len(line) == 0 {
			c.state = inSize
			return c.onHead(c.head)
		}
	case inSize:
		size, err := parseChunkSize(line)
		if err != nil {
			return err
		}
		if size == 0 {
			c.state = inTrailer
		} else {
			c.state, c.left = inData, size
		}
	case inDataEnd:
		if len(line) != 0 {
			return fmt.Errorf("chunk data not followed by CRLF: %q", truncate(line))
		}
		c.state = inSize
	case inTrailer:
		if len(line) == 0 {
			c.state = inDone
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return fmt.Errorf("bad trailer line %q", truncate(line))
		}
		value := bytes.Trim(line[colon+1:], " \t")
		if !validValue(value) {
			return fmt.Errorf("bad trailer value in line %q", truncate(line))
		}
		if c.trailer == nil {
			c.trailer = make(http.Header)
		}
		name := textproto.CanonicalMIMEHeaderKey(string(line[:colon]))
		c.trailer[name] = append(c.trailer[name], string(value))
	}
	return nil
}

// parseChunkSize reads a chunk-size line: hex digits, then optional ";extensions".
func parseChunkSize(line []byte) (int64, error) {
	hex, _, _ := bytes.Cut(line, []byte(";"))
	hex = bytes.TrimRight(hex, " \t")
	if len(hex) == 0 || len(hex) > 15 {
		return 0, fmt.Errorf("bad chunk size line %q", truncate(line))
	}
	var n int64
	for _, ch := range hex {
		var d byte
		switch {
		case '0' <= ch && ch <= '9':
			d = ch - '0'
		case 'a' <= ch && ch <= 'f':
			d = ch - 'a' + 10
		case 'A' <= ch && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, fmt.Errorf("bad chunk size line %q", truncate(line))
		}
		n = n<<4 | int64(d)
	}
	return n, nil
}
