// Command cgi exercises the CGI contract of v9's wasm executor, one behaviour per PATH_INFO:
//
//	/env           the environment (sorted) and arguments
//	/status        Status: 404 Not Found
//	/redirect      Location: /elsewhere, no Status (302)
//	/crlf          headers ended with CRLF
//	/counter       a global counter incremented once per run (so always 1), and the query string
//	/fs            reads /data.txt, tries to write /x, to climb out with .., and to follow /link.txt
//	/net           tries to open a TCP connection
//	/stderr        two lines on stderr
//	/exit3         a valid response, then exit code 3
//	/exit3-silent  exit code 3, no output
//	/panic         panics (the Go runtime exits with code 2)
//	/big?n=N       a body of N bytes
//	/time          the wall clock's year
//	/sleep         sleeps for an hour
package main

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

var counter int

func main() {
	q := os.Getenv("QUERY_STRING")
	switch path := os.Getenv("PATH_INFO"); path {
	case "/env":
		text()
		env := os.Environ()
		sort.Strings(env)
		for _, kv := range env {
			fmt.Println(kv)
		}
		fmt.Printf("ARGS=%q\n", os.Args)
	case "/status":
		fmt.Print("Status: 404 Not Found\nContent-Type: text/plain\n\nnothing here\n")
	case "/redirect":
		fmt.Print("Location: /elsewhere\n\n")
	case "/crlf":
		fmt.Print("Content-Type: text/plain\r\nX-Test: yes\r\n\r\ncrlf body")
	case "/counter":
		counter++
		text()
		fmt.Printf("count=%d %s\n", counter, q)
	case "/fs":
		text()
		data, err := os.ReadFile("/data.txt")
		fmt.Printf("read: %q %v\n", data, err)
		err = os.WriteFile("/x", []byte("x"), 0o644)
		fmt.Printf("write: %v\n", err)
		_, err = os.ReadFile("/../outside.txt")
		fmt.Printf("dotdot: %v\n", err)
		_, err = os.ReadFile("/link.txt")
		fmt.Printf("symlink: %v\n", err)
	case "/net":
		text()
		_, err := net.Dial("tcp", "127.0.0.1:80")
		fmt.Printf("dial: %v\n", err)
	case "/stderr":
		fmt.Fprintln(os.Stderr, "first line to stderr")
		fmt.Fprint(os.Stderr, "second line")
		text()
		fmt.Println("ok")
	case "/exit3":
		text()
		fmt.Println("partial but valid")
		os.Exit(3)
	case "/exit3-silent":
		os.Exit(3)
	case "/panic":
		panic("boom")
	case "/big":
		n, _ := strconv.Atoi(strings.TrimPrefix(q, "n="))
		text()
		os.Stdout.Write([]byte(strings.Repeat("x", n)))
	case "/sleep":
		time.Sleep(time.Hour)
		text()
		fmt.Println("slept")
	case "/time":
		text()
		fmt.Println(time.Now().Year())
	default:
		fmt.Printf("Status: 400 Bad Request\nContent-Type: text/plain\n\nunknown path %q\n", path)
	}
}

func text() { fmt.Print("Content-Type: text/plain\n\n") }
