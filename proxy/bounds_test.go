package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHeaderBounds: too many header fields, or too many bytes of them, is 431; within
// both, the request goes through.
func TestHeaderBounds(t *testing.T) {
	p := New(Config{NodeID: "n1", Router: table{"hello": {Found: true, Local: []http.Handler{echo("local")}, InProcess: true}},
		Bounds: Bounds{MaxHeaders: 10, MaxHeaderBytes: 200}})
	for _, tc := range []struct {
		name   string
		header func(http.Header)
		want   int
	}{
		{"few", func(h http.Header) { h.Set("A", "b") }, 200},
		{"many fields", func(h http.Header) {
			for i := range 11 {
				h.Add(fmt.Sprintf("X-%d", i), "v")
			}
		}, 431},
		{"one name repeated", func(h http.Header) {
			for range 11 {
				h.Add("X", "v")
			}
		}, 431},
		{"long value", func(h http.Header) { h.Set("X", strings.Repeat("v", 201)) }, 431},
	} {
		req := httptest.NewRequest("GET", "http://hello.localhost/", nil)
		tc.header(req.Header)
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, rec.Code, tc.want)
		}
	}
}

// TestBodyBound: a body declared over the component's limit is 413 before anything reads
// it; one that grows past it while being read is 413 too; the component's own limit wins
// over the proxy's default.
func TestBodyBound(t *testing.T) {
	reader := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprintf(w, "%d", n)
	})
	p := New(Config{NodeID: "n1", Router: table{
		"small": {Found: true, Local: []http.Handler{reader}, InProcess: true, MaxBody: 10},
		"big":   {Found: true, Local: []http.Handler{reader}, InProcess: true},
	}, Bounds: Bounds{MaxBody: 100}})
	post := func(host string, body io.Reader, length int64) (int, string) {
		req := httptest.NewRequest("POST", "http://"+host+".localhost/", body)
		req.ContentLength = length
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, _ := post("small", strings.NewReader("0123456789x"), 11); code != 413 {
		t.Errorf("declared 11 > 10: %d", code)
	}
	if code, _ := post("small", strings.NewReader("0123456789x"), -1); code != 413 {
		t.Errorf("streamed 11 > 10: %d", code)
	}
	if code, body := post("small", strings.NewReader("0123456789"), 10); code != 200 || body != "10" {
		t.Errorf("10 bytes: %d %q", code, body)
	}
	if code, body := post("big", strings.NewReader(strings.Repeat("x", 100)), -1); code != 200 || body != "100" {
		t.Errorf("default limit, 100 bytes: %d %q", code, body)
	}
	if code, _ := post("big", strings.NewReader(strings.Repeat("x", 101)), -1); code != 413 {
		t.Errorf("default limit, 101 bytes: %d", code)
	}
}

// TestComponentQueue: a component with concurrency 2 holds 2 requests in flight and 2
// waiting; the next gets 429 with Retry-After at once, and another component on the same
// proxy is answered meanwhile.
func TestComponentQueue(t *testing.T) {
	release := make(chan struct{})
	var entered sync.WaitGroup
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Done()
		<-release
	})
	p := New(Config{NodeID: "n1", Router: table{
		"flooded": {Found: true, Local: []http.Handler{slow}, InProcess: true, Concurrency: 2},
		"other":   {Found: true, Local: []http.Handler{echo("other")}, InProcess: true, Concurrency: 2},
	}, Bounds: Bounds{QueueWait: 30 * time.Second}})
	entered.Add(4)
	served := fill(t, p, "flooded.localhost", 4)
	waitGate(t, p, "flooded", 2)
	rec, _ := get(t, p, "flooded.localhost", "/")
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("fifth request: %d %v", rec.Code, rec.Header())
	}
	if rec, body := get(t, p, "other.localhost", "/"); rec.Code != 200 || !strings.HasPrefix(body, "other") {
		t.Fatalf("other component: %d %q", rec.Code, body)
	}
	close(release)
	served("a queued request")
	entered.Wait()
}

// TestHeldFromZeroBound: a component at zero (no instance, an on-demand start) holds as many
// requests as its gate takes while the instance starts; past that bound the next one gets
// 503 with Retry-After and the reason at once, and the held ones are served once it runs.
func TestHeldFromZeroBound(t *testing.T) {
	started := make(chan struct{})
	var entered sync.WaitGroup
	starting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Done()
		<-started // the instance is starting: the request is held
		io.WriteString(w, "cold")
	})
	p := New(Config{NodeID: "n1", Router: table{"zero": {Found: true, OnDemand: starting, Concurrency: 1}},
		Bounds: Bounds{QueueWait: 30 * time.Second}})
	entered.Add(2)
	served := fill(t, p, "zero.localhost", 2)
	waitGate(t, p, "zero", 1)
	rec, body := get(t, p, "zero.localhost", "/")
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(body, "starting an instance and already holds 2 requests") {
		t.Fatalf("third request at zero: %d %v %q", rec.Code, rec.Header(), body)
	}
	close(started)
	served("a held request")
	entered.Wait()
}

// fill sends n requests to host at once, each from a goroutine of its own; the function it
// returns waits for their answers and wants each to be 200.
func fill(t *testing.T, p *Proxy, host string, n int) (served func(what string)) {
	done := make(chan int, n)
	for range n {
		go func() {
			rec, _ := get(t, p, host, "/")
			done <- rec.Code
		}()
	}
	return func(what string) {
		t.Helper()
		for range n {
			if code := <-done; code != 200 {
				t.Fatalf("%s got %d", what, code)
			}
		}
	}
}

// waitGate waits until a component's gate of size has size requests in flight and as many
// queued.
func waitGate(t *testing.T, p *Proxy, component string, size int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := p.gates.get(component, size)
		g.mu.Lock()
		q := g.queue
		g.mu.Unlock()
		if len(g.slots) == size && q == size {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: in flight %d, queued %d", component, len(g.slots), q)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
