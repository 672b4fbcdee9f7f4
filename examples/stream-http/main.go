// Command stream-http is a warm v9 wasm component that streams: its handlers read the
// request body as the client sends it and send their answer as they write it (http.Flusher),
// with trailers, as an ordinary net/http server would. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o stream.wasm .
//
// or let `build = "go"` do it. v9's tests use it too.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/velocity9/v9/guest"
)

func init() {
	// The proxy routes by the first path segment, the component's name, and passes the
	// whole path on.
	mux := http.NewServeMux()
	mux.HandleFunc("/{component}/echo", echo)
	mux.HandleFunc("/{component}/ticks", ticks)
	mux.HandleFunc("/{component}/hash", hash)
	mux.HandleFunc("/{component}/ignore", ignore)
	mux.HandleFunc("/{component}/trailer", trailer)
	mux.HandleFunc("/{component}/big", big)
	mux.HandleFunc("/{component}/stall", stall)
	guest.Handle(mux)
}

func main() {}

// echo answers each line of the request body as soon as it arrives: "got LINE".
func echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	lines := bufio.NewScanner(r.Body)
	for lines.Scan() {
		fmt.Fprintf(w, "got %s\n", lines.Text())
		w.(http.Flusher).Flush()
	}
}

// ticks sends ?n= events, server-sent-events style, one flush each.
func ticks(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for i := range n {
		fmt.Fprintf(w, "data: tick %d\n\n", i)
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// hash reads the body in small reads and answers its length, SHA-256 and the number of reads.
func hash(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	buf := make([]byte, 32<<10)
	var n int64
	reads := 0
	for {
		k, err := r.Body.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if k > 0 {
			reads++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	fmt.Fprintf(w, "%d %s %d\n", n, hex.EncodeToString(h.Sum(nil)), reads)
}

// ignore answers without reading the body.
func ignore(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "ignored")
}

// trailer sends a declared trailer (X-Sum) and an undeclared one (http.TrailerPrefix).
func trailer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Trailer", "X-Sum")
	h := sha256.New()
	for i := range 3 {
		line := fmt.Sprintf("part %d\n", i)
		h.Write([]byte(line))
		io.WriteString(w, line)
		if r.URL.Query().Has("flush") {
			w.(http.Flusher).Flush()
		}
	}
	w.Header().Set("X-Sum", hex.EncodeToString(h.Sum(nil)))
	w.Header().Set(http.TrailerPrefix+"X-Late", "late")
}

// big sends ?kib= KiB of "x", flushed every 64 KiB.
func big(w http.ResponseWriter, r *http.Request) {
	kib, _ := strconv.Atoi(r.URL.Query().Get("kib"))
	block := make([]byte, 1<<10)
	for i := range block {
		block[i] = 'x'
	}
	for i := range kib {
		if _, err := w.Write(block); err != nil {
			return
		}
		if i%64 == 63 {
			w.(http.Flusher).Flush()
		}
	}
}

// stall sends a first line, then computes until v9 stops it.
func stall(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "started")
	w.(http.Flusher).Flush()
	for t := time.Now(); time.Since(t) >= 0; {
	}
}
