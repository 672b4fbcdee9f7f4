package guest

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// conn is one request's scratch state, reused from call to call.
type conn struct {
	in  *bufio.Reader
	out bytes.Buffer
	w   responseWriter
}

// serve reads one request from in, runs the handler and writes the CGI response to out.
func (c *conn) serve(in io.Reader, out io.Writer) error {
	if c.in == nil {
		c.in = bufio.NewReaderSize(in, 16<<10)
	} else {
		c.in.Reset(in)
	}
	req, err := http.ReadRequest(c.in)
	if err != nil {
		_, werr := io.WriteString(out, "Status: 400\r\nContent-Type: text/plain\r\n\r\nbad request\n")
		if werr != nil {
			return werr
		}
		return nil
	}
	req.RemoteAddr = req.Header.Get(remoteAddrHeader)
	req.Header.Del(remoteAddrHeader)
	c.w.reset()
	current().ServeHTTP(&c.w, req) // a panic ends the instance; the host answers 500
	_, _ = io.Copy(io.Discard, req.Body)

	c.out.Reset()
	status := c.w.status
	if status == 0 {
		status = http.StatusOK
	}
	c.out.WriteString("Status: ")
	c.out.WriteString(strconv.Itoa(status))
	c.out.WriteString("\r\n")
	if c.w.header.Get("Content-Type") == "" && c.w.body.Len() > 0 {
		c.w.header.Set("Content-Type", http.DetectContentType(c.w.body.Bytes()))
	}
	for k, vs := range c.w.header {
		for _, v := range vs {
			c.out.WriteString(k)
			c.out.WriteString(": ")
			c.out.WriteString(v)
			c.out.WriteString("\r\n")
		}
	}
	c.out.WriteString("\r\n")
	c.out.Write(c.w.body.Bytes())
	_, err = out.Write(c.out.Bytes())
	return err
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
