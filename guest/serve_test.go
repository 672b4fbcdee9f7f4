package guest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// One request in wire form becomes the handler's call, and its answer a CGI response with
// status, headers and body; the client's address reaches RemoteAddr and not the headers.
func TestServeOneRequest(t *testing.T) {
	Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(remoteAddrHeader) != "" {
			t.Error("the remote address header reached the handler")
		}
		w.Header().Set("X-Echo", r.Method+" "+r.URL.String()+" "+r.RemoteAddr)
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	}))
	defer Handle(http.NotFoundHandler())
	var c conn
	for i := 0; i < 2; i++ { // the scratch state is reused
		in := "POST /hello/x?a=1 HTTP/1.1\r\nHost: example\r\nV9-Remote-Addr: 10.0.0.1:5\r\nContent-Length: 4\r\n\r\nping"
		var out bytes.Buffer
		if err := c.serve(strings.NewReader(in), &out); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, want := range []string{"Status: 201\r\n", "X-Echo: POST /hello/x?a=1 10.0.0.1:5\r\n", "\r\n\r\nping"} {
			if !strings.Contains(got, want) {
				t.Fatalf("response %q lacks %q", got, want)
			}
		}
	}
	var out bytes.Buffer
	if err := c.serve(strings.NewReader("garbage\r\n\r\n"), &out); err != nil || !strings.HasPrefix(out.String(), "Status: 400") {
		t.Fatalf("bad request: %v %q", err, out.String())
	}
}
