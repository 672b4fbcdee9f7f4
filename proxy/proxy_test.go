package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type table map[string]Target

func (t table) Lookup(name string) Target { return t[name] }

func echo(tag string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, tag+" "+r.URL.Path+" script="+r.Header.Get(ScriptNameHeader)+" hop="+r.Header.Get(HopHeader))
	})
}

func get(t *testing.T, h http.Handler, host, path string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "http://"+host+path, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, rec.Body.String()
}

func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRoutesByHostAndPath(t *testing.T) {
	p := New(Config{NodeID: "n1", Router: table{"hello": {Found: true, Local: []http.Handler{echo("local")}, InProcess: true}}})
	rec, body := get(t, p, "hello.localhost:8080", "/a/b?x=1")
	if rec.Code != 200 || body != "local /a/b script= hop=" || rec.Header().Get(ServedByHeader) != "n1" {
		t.Fatalf("by host: %d %q %v", rec.Code, body, rec.Header())
	}
	_, body = get(t, p, "127.0.0.1:8080", "/hello/a/b")
	if body != "local /hello/a/b script=/hello hop=" {
		t.Fatalf("by path: %q", body)
	}
}

func TestStatusForUnknownPausedAndNoInstance(t *testing.T) {
	p := New(Config{NodeID: "n1", Router: table{
		"paused": {Found: true, Paused: true},
		"idle":   {Found: true},
	}})
	if rec, _ := get(t, p, "x", "/nope/"); rec.Code != 404 {
		t.Fatalf("unknown: %d", rec.Code)
	}
	if rec, _ := get(t, p, "x", "/"); rec.Code != 404 {
		t.Fatalf("no component: %d", rec.Code)
	}
	for _, name := range []string{"paused", "idle"} {
		rec, _ := get(t, p, name+".localhost", "/")
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%s: %d %v", name, rec.Code, rec.Header())
		}
	}
}

func TestForwardsWithHopAndRetriesDeadNode(t *testing.T) {
	// Node 2's proxy serves its local instance.
	n2 := New(Config{NodeID: "n2", Router: table{"hello": {Found: true, Local: []http.Handler{echo("n2")}}}})
	srv := httptest.NewServer(n2)
	defer srv.Close()
	live := strings.TrimPrefix(srv.URL, "http://")
	p := New(Config{NodeID: "n1", Router: table{"hello": {Found: true, Remote: []string{deadAddr(t), live}}}})
	for i := 0; i < 4; i++ {
		rec, body := get(t, p, "hello.localhost", "/x")
		if rec.Code != 200 || body != "n2 /x script= hop=n1" || rec.Header().Get(ServedByHeader) != "n2" {
			t.Fatalf("request %d: %d %q", i, rec.Code, body)
		}
	}
}

func TestHopIsServedLocallyOrRefused(t *testing.T) {
	// A node with no local instance that receives a forwarded request does not forward again.
	p := New(Config{NodeID: "n2", Router: table{"hello": {Found: true, Remote: []string{"127.0.0.1:1"}}}})
	req := httptest.NewRequest("GET", "http://hello.localhost/", nil)
	req.Header.Set(HopHeader, "n1")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get(noInstanceHeader) == "" {
		t.Fatalf("hop without local instance: %d %v", rec.Code, rec.Header())
	}
}

func TestAllRemotesDeadIs502(t *testing.T) {
	p := New(Config{NodeID: "n1", Router: table{"hello": {Found: true, Remote: []string{deadAddr(t), deadAddr(t)}}}})
	if rec, _ := get(t, p, "hello.localhost", "/"); rec.Code != 502 {
		t.Fatalf("got %d", rec.Code)
	}
}

func TestStatsCountRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := &recorded{}
	st := NewStats(reg, rec)
	var lines []string
	p := New(Config{NodeID: "n1", Stats: st, Access: func(c, l string) { lines = append(lines, c+": "+l) },
		Router: table{"hello": {Found: true, Local: []http.Handler{echo("x")}, InProcess: true}, "idle": {Found: true}}})
	get(t, p, "hello.localhost", "/")
	get(t, p, "hello.localhost", "/")
	get(t, p, "idle.localhost", "/")
	if fmt.Sprint(rec.got) != "[hello 200 hello 200 idle 503]" {
		t.Fatalf("recorded: %v", rec.got)
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "hello: GET / 200") {
		t.Fatalf("access lines: %q", lines)
	}
	mfs, _ := reg.Gather()
	if len(mfs) != 2 {
		t.Fatalf("metrics: %d families", len(mfs))
	}
}

func TestLoadCountsEnteringRequestsOnly(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 8)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	})
	l := NewLoad()
	p := New(Config{NodeID: "n1", Router: table{"hello": {Found: true, InProcess: true, Local: []http.Handler{slow}}}, Load: l})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/hello/", nil))
		}()
	}
	for range 3 {
		<-started
	}
	// A forwarded request is the entering node's to count.
	hop := httptest.NewRequest("GET", "/hello/", nil)
	hop.Header.Set(HopHeader, "n2")
	wg.Add(1)
	go func() { defer wg.Done(); p.ServeHTTP(httptest.NewRecorder(), hop) }()
	<-started
	// Unknown components are not counted.
	p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nope/", nil))
	got := l.Take()
	if len(got) != 1 || got["hello"] != (LoadSample{PeakInFlight: 3, Requests: 3}) {
		t.Fatalf("load = %+v, want hello with 3 in flight", got)
	}
	close(release)
	wg.Wait()
	if got := l.Take(); got["hello"] != (LoadSample{PeakInFlight: 3}) {
		t.Fatalf("next interval = %+v: the peak carries what was in flight when it began", got)
	}
	if got := l.Take(); len(got) != 0 {
		t.Fatalf("idle interval = %+v, want nothing", got)
	}
}

// countingTransport counts round trips per host.
type countingTransport struct {
	mu    sync.Mutex
	tries map[string]int
	next  http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.tries[r.URL.Host]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func TestDeadNodeIsTriedLast(t *testing.T) {
	n2 := httptest.NewServer(New(Config{NodeID: "n2", Router: table{"hello": {Found: true, Local: []http.Handler{echo("n2")}}}}))
	defer n2.Close()
	live, dead := strings.TrimPrefix(n2.URL, "http://"), deadAddr(t)
	tr := &countingTransport{tries: map[string]int{}, next: http.DefaultTransport}
	p := New(Config{NodeID: "n1", Transport: tr, Router: table{"hello": {Found: true, Remote: []string{dead, live}}}})
	for i := 0; i < 20; i++ {
		if rec, body := get(t, p, "hello.localhost", "/x"); rec.Code != 200 || !strings.HasPrefix(body, "n2 ") {
			t.Fatalf("request %d: %d %q", i, rec.Code, body)
		}
	}
	// Round robin would try the dead node first on every other request; after its first
	// failure it is tried after the live one, which answers.
	if tr.tries[dead] != 1 || tr.tries[live] != 20 {
		t.Fatalf("tries %v: want the dead node tried once", tr.tries)
	}
}

func TestCanaryTurnSpreadsEvenly(t *testing.T) {
	for _, pct := range []uint32{0, 1, 10, 50, 99, 100} {
		n, run, longest := 0, 0, 0
		for k := uint64(0); k < 100; k++ {
			if canaryTurn(k, pct) {
				n++
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
		if n != int(pct) || (pct <= 50 && longest > 1) {
			t.Errorf("%d%%: %d of 100 to the canary, longest run %d", pct, n, longest)
		}
	}
}

type recorded struct {
	mu  sync.Mutex
	got []string
}

func (r *recorded) Record(component string, status int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s %d", component, status))
}

// A stream the upstream cuts (http.ErrAbortHandler) still gets its access-log line and its
// count, marked aborted, and the panic still reaches net/http so the client sees the cut.
func TestAbortedStreamIsLogged(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	cut := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	p := New(Config{NodeID: "n1", Access: func(c, l string) { mu.Lock(); lines = append(lines, c+": "+l); mu.Unlock() },
		Router: table{"cut": {Found: true, Local: []http.Handler{cut}, InProcess: true}}})
	srv := httptest.NewServer(p)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/cut/x", nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the client saw a proper end of a cut stream")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := append([]string(nil), lines...)
		mu.Unlock()
		if len(got) == 1 {
			if !strings.HasPrefix(got[0], "cut: GET /cut/x 200 7B ") || !strings.HasSuffix(got[0], " aborted") {
				t.Fatalf("access line: %q", got[0])
			}
			return
		}
		if len(got) > 1 || time.Now().After(deadline) {
			t.Fatalf("access lines: %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUnroutedNamesShareOneName: requests for names that route to no component (any Host an
// unauthenticated client makes up) are counted and logged under Unrouted, so that neither
// the metrics nor the log rings nor the rollups grow a series per name.
func TestUnroutedNamesShareOneName(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := &recorded{}
	var lines []string
	p := New(Config{NodeID: "n1", Stats: NewStats(reg, rec), Access: func(c, l string) { lines = append(lines, c+": "+l) },
		Router: table{"hello": {Found: true, Local: []http.Handler{echo("x")}, InProcess: true}}})
	for i := range 50 {
		if r, _ := get(t, p, fmt.Sprintf("made-up-%d.localhost", i), "/"); r.Code != http.StatusNotFound {
			t.Fatalf("made-up name: %d", r.Code)
		}
	}
	get(t, p, "hello.localhost", "/")
	names := map[string]bool{}
	for _, l := range lines {
		names[strings.SplitN(l, ": ", 2)[0]] = true
	}
	if len(lines) != 51 || len(names) != 2 || !names[Unrouted] || !names["hello"] {
		t.Fatalf("access lines under %v (%d lines)", names, len(lines))
	}
	if !strings.HasPrefix(lines[0], Unrouted+": GET / 404") {
		t.Errorf("first line %q", lines[0])
	}
	series := 0
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		series += len(mf.GetMetric())
	}
	if series > 4 {
		t.Errorf("%d metric series after 50 made-up names and one component", series)
	}
	if got := fmt.Sprint(rec.got[49:]); got != "["+Unrouted+" 404 hello 200]" {
		t.Errorf("rollups recorded %s", got)
	}
}

// TestHopFromAClientChoosesNothing: X-V9-Hop and X-V9-Version from a source that is no
// member of the cluster still keep a request from being forwarded again, but choose no
// version (a 1 % canary gets about 1 %, not every request) and do not take the request out
// of the component's load; from a member they are followed.
func TestHopFromAClientChoosesNothing(t *testing.T) {
	served := ""
	h := func(s string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served = s })
	}
	member := netip.MustParseAddr("10.0.0.2")
	l := NewLoad()
	p := New(Config{NodeID: "n1", Load: l, Peer: func(a netip.Addr) bool { return a == member },
		Router: table{"app": {Found: true, Local: []http.Handler{h("stable")}, Canary: &Canary{Percent: 1, Local: []http.Handler{h("canary")}}}}})
	send := func(from string) string {
		r := httptest.NewRequest("GET", "http://127.0.0.1:8080/app/", nil)
		r.RemoteAddr = from + ":40000"
		r.Header.Set(HopHeader, "forged")
		r.Header.Set(VersionHeader, "canary")
		served = ""
		p.ServeHTTP(httptest.NewRecorder(), r)
		return served
	}
	canaries := 0
	for range 20 {
		if send("203.0.113.9") == "canary" {
			canaries++
		}
	}
	if canaries > 2 {
		t.Errorf("%d of 20 requests with a client's own hop and version reached the 1%% canary", canaries)
	}
	if got := l.Take()["app"]; got.Requests != 20 {
		t.Errorf("load counted %d of the 20 client requests", got.Requests)
	}
	if send(member.String()) != "canary" {
		t.Error("a member's forwarded request for the canary was not served by it")
	}
	if got := l.Take()["app"]; got.Requests != 0 {
		t.Errorf("a member's forwarded request was counted here too: %d", got.Requests)
	}
}
