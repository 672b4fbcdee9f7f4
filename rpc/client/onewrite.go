package client

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// maxOneWriteBody is the largest request body OneWrite reads ahead.
const maxOneWriteBody = 64 << 10

// OneWrite sends each small request of a known length (every unary Connect call) with its
// headers and body in one write to the connection. net/http writes the headers on their own
// first unless the body is a reader it knows holds its bytes in memory, and connect-go's
// unary body is not one: two writes, two packets and two reads on the server per call.
// OneWrite reads such a body ahead (it is in memory already) and hands net/http a
// bytes.Reader. Streams (unknown length) and large bodies pass as they are.
func OneWrite(next http.RoundTripper) http.RoundTripper { return oneWrite{next: next} }

// OneWriteWithHeader is OneWrite that also sets the header key to value on every request,
// in the one copy of the request it makes (a RoundTripper that sets a header must not
// change its caller's request: one that wraps OneWrite would copy each request twice).
func OneWriteWithHeader(next http.RoundTripper, key, value string) http.RoundTripper {
	return oneWrite{next: next, key: key, value: value}
}

type oneWrite struct {
	next       http.RoundTripper
	key, value string // a header to set, when key is not ""
}

func (o oneWrite) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength <= 0 || r.ContentLength > maxOneWriteBody {
		if o.key != "" {
			r = r.Clone(r.Context())
			r.Header.Set(o.key, o.value)
		}
		return o.next.RoundTrip(r)
	}
	// One byte past the length shows a body longer than it says, which net/http refuses.
	b, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength+1))
	r.Body.Close() // the round tripper owns the body: it closes it, even on errors
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > r.ContentLength {
		return nil, fmt.Errorf("http: ContentLength=%d with a longer Body", r.ContentLength)
	}
	if int64(len(b)) < r.ContentLength {
		return nil, fmt.Errorf("http: ContentLength=%d with Body length %d", r.ContentLength, len(b))
	}
	r = r.Clone(r.Context())
	if o.key != "" {
		r.Header.Set(o.key, o.value)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return o.next.RoundTrip(r)
}
