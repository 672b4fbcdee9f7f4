package bounds

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T, max, perAddr int, reject Reject) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, max, perAddr, reject)
	t.Cleanup(func() { l.Close() })
	return l
}

func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestListenerPerAddrAndTotal: the connection over the per-address bound gets a 429 with
// Retry-After, the one over the node's bound a 503; closing one frees its place.
func TestListenerPerAddrAndTotal(t *testing.T) {
	l := listen(t, 3, 2, RejectHTTP(7))
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	addr := l.Addr().String()
	status := func(c net.Conn) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("read refusal: %v", err)
		}
		return resp.Status + " retry=" + resp.Header.Get("Retry-After")
	}
	dialFrom(t, "127.0.0.1", addr)
	dialFrom(t, "127.0.0.1", addr)
	s1, _ := <-accepted, <-accepted
	if got := status(dialFrom(t, "127.0.0.1", addr)); got != "429 Too Many Requests retry=7" {
		t.Fatalf("third from one address: %s", got)
	}
	dialFrom(t, "127.0.0.2", addr)
	<-accepted
	if got := status(dialFrom(t, "127.0.0.3", addr)); got != "503 Service Unavailable retry=7" {
		t.Fatalf("fourth in all: %s", got)
	}
	if l.Refused() != 2 {
		t.Fatalf("refused %d, want 2", l.Refused())
	}
	if total, from := l.Open("127.0.0.1"); total != 3 || from != 2 {
		t.Fatalf("open %d, %d from 127.0.0.1; want 3, 2", total, from)
	}
	s1.Close()
	s1.Close() // twice: counted once
	if total, from := l.Open("127.0.0.1"); total != 2 || from != 1 {
		t.Fatalf("after close: open %d, %d from 127.0.0.1; want 2, 1", total, from)
	}
	dialFrom(t, "127.0.0.1", addr)
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("a freed place was not given to the next connection")
	}
}

// TestRejectTLSJustCloses: a TLS client over a bound gets no HTTP text, only a close.
func TestRejectTLSJustCloses(t *testing.T) {
	l := listen(t, 1, 0, RejectHTTP(1))
	go func() {
		for {
			if _, err := l.Accept(); err != nil {
				return
			}
		}
	}()
	dialFrom(t, "127.0.0.1", l.Addr().String())
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := l.Open(""); n < 1 && time.Now().Before(deadline); n, _ = l.Open("") {
		time.Sleep(5 * time.Millisecond)
	}
	c := dialFrom(t, "127.0.0.1", l.Addr().String())
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{0x16, 3, 1, 0, 0})
	b, err := io.ReadAll(c)
	if len(b) != 0 || (err != nil && !isReset(err)) {
		t.Fatalf("TLS client over the bound read %q, %v", b, err)
	}
}

func isReset(err error) bool { return strings.Contains(err.Error(), "reset") }

// TestBodyDeadline: a body that trickles is cut off at the total deadline, a stalled one
// at the idle deadline, and a body read to its end lifts the deadline so the answer can
// take longer.
func TestBodyDeadline(t *testing.T) {
	got := make(chan error, 4)
	h := BodyDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		got <- err
		if err == nil {
			time.Sleep(400 * time.Millisecond) // past both deadlines: the answer still goes out
			io.WriteString(w, "done")
		}
	}), 600*time.Millisecond, 200*time.Millisecond)
	srv := &http.Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	send := func(pause time.Duration, chunks int) net.Conn {
		c := dialFrom(t, "127.0.0.1", ln.Addr().String())
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
		go func() {
			for i := 0; i < chunks; i++ {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(pause)
			}
		}()
		return c
	}
	start := time.Now()
	send(100*time.Millisecond, 100) // trickles: each byte within idle, never done
	if err := <-got; !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("trickling body: %v after %s", err, time.Since(start))
	}
	start = time.Now()
	send(0, 1) // one byte, then silence
	if err := <-got; !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 550*time.Millisecond {
		t.Fatalf("stalled body: %v after %s", err, time.Since(start))
	}
	resp, err := http.Post("http://"+ln.Addr().String(), "text/plain", strings.NewReader("whole"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-got; err != nil || string(b) != "done" {
		t.Fatalf("whole body: %v, answer %q", err, b)
	}
}
