// Command hello is the smallest v9 container component: a static HTTP server that listens on
// $PORT, as v9 asks of every container. Make its image, with no Docker or registry:
//
//	v9 image build examples/hello-container
//
// which builds it with CGO_ENABLED=0 and saves an OCI image archive whose entrypoint is the
// binary as image.tar beside v9.toml, named as v9.toml says (v9's tests do the same with
// package ociimage). See README.md.
//
// Endpoints, for v9's tests:
//
//	GET /        "hello from container", $GREETING and /app/message.txt if present
//	GET /crash   exits with status 3
//	GET /write   tries to write /app/x (v9 mounts the component's files read-only) and reports
//	GET /started when this process started (Unix nanoseconds): a restart changes it
//	GET /memory  the memory limit of its cgroup (v2 memory.max or v1 memory.limit_in_bytes)
//	GET /sleep   answers after ?d= (a Go duration), for timeouts
//	ANY /echo    the request as it arrived: method, URI, Host, X-Forwarded-*, then the body
//	GET /dial    opens a TCP connection to ?addr= (host:port, 1s timeout): 200 "connected",
//	             or 502 with the error (v9's network fence tests)
//	GET /fetch   GETs ?url= (2s timeout): 200 with its status line and body, or 502
//
// Each request is logged on stdout. SIGTERM shuts it down gracefully with status 0.
// `hello -exit N` exits with status N at once after a line on stderr (an image that never
// becomes ready); `hello -hang` runs without ever listening (one that is never ready).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	exit := flag.Int("exit", -1, "exit with this status at once")
	hang := flag.Bool("hang", false, "run without ever listening")
	flag.Parse()
	if *hang {
		select {}
	}
	if *exit >= 0 {
		fmt.Fprintf(os.Stderr, "hello: told to exit with status %d\n", *exit)
		os.Exit(*exit)
	}

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", hello)
	mux.HandleFunc("GET /crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "hello: crashing on request")
		os.Exit(3)
	})
	mux.HandleFunc("GET /write", func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile("/app/x", []byte("x"), 0o644); err != nil {
			fmt.Fprintf(w, "write /app/x: %v\n", err)
			return
		}
		fmt.Fprintln(w, "write /app/x: ok")
	})
	started := time.Now().UnixNano()
	mux.HandleFunc("GET /started", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, started)
	})
	mux.HandleFunc("GET /memory", func(w http.ResponseWriter, r *http.Request) {
		for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
			if b, err := os.ReadFile(f); err == nil {
				fmt.Fprintln(w, strings.TrimSpace(string(b)))
				return
			}
		}
		http.Error(w, "no cgroup memory limit file", http.StatusNotFound)
	})

	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-time.After(d):
			fmt.Fprintf(w, "slept %s\n", d)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "method=%s\nuri=%s\nhost=%s\n", r.Method, r.RequestURI, r.Host)
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			fmt.Fprintf(w, "%s=%s\n", strings.ToLower(h), r.Header.Get(h))
		}
		io.Copy(w, r.Body)
	})

	mux.HandleFunc("GET /dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), time.Second)
		if err != nil {
			http.Error(w, "dial: "+err.Error(), http.StatusBadGateway)
			return
		}
		c.Close()
		fmt.Fprintln(w, "connected")
	})
	mux.HandleFunc("GET /fetch", func(w http.ResponseWriter, r *http.Request) {
		client := &http.Client{Timeout: 2 * time.Second}
		resp, err := client.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, "fetch: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		fmt.Fprintln(w, resp.Status)
		io.Copy(w, io.LimitReader(resp.Body, 64<<10))
	})

	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("hello: %s %s\n", r.Method, r.URL.Path)
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: logged, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatalf("hello: %v", err)
	}
	fmt.Printf("hello: listening on %s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	shutdown := make(chan struct{})
	go func() {
		defer close(shutdown)
		<-ctx.Done()
		fmt.Println("hello: shutting down")
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("hello: %v", err)
	}
	<-shutdown
	fmt.Println("hello: bye")
}

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	msg := "hello from container"
	if g := os.Getenv("GREETING"); g != "" {
		msg += " " + g
	}
	fmt.Fprintln(w, msg)
	if b, err := os.ReadFile("/app/message.txt"); err == nil {
		w.Write(b)
	}
}
