package hostile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/node"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
)

// tarOf builds a plain tar with the given entries (name -> content).
func tarOf(entries ...[2]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		_ = tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o644, Size: int64(len(e[1])), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(e[1]))
	}
	_ = tw.Close()
	return buf.Bytes()
}

// TestHostileUploads sends hostile upload streams: each is refused with its code, an
// oversize message before it is buffered, and nothing is deployed.
func TestHostileUploads(t *testing.T) {
	e := newEnv(t)
	meta := &deployv1.UploadRequest{Part: &deployv1.UploadRequest_Meta{Meta: &deployv1.UploadMeta{CommitMessage: "hostile"}}}
	chunk := func(b []byte) *deployv1.UploadRequest {
		return &deployv1.UploadRequest{Part: &deployv1.UploadRequest_Chunk{Chunk: b}}
	}
	manifest := [2]string{"v9.toml", "name = \"evil\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"m.wasm\"\n"}
	for _, tc := range []struct {
		name string
		msgs []*deployv1.UploadRequest
		want connect.Code
	}{
		// Refused before it is buffered: Connect reads the oversize message through to
		// discard it, so a slow sender may meet the stream's idle deadline first.
		{"one 100 MB message", []*deployv1.UploadRequest{meta, chunk(make([]byte, 100<<20))}, connect.CodeResourceExhausted},
		{"path traversal in the bundle", []*deployv1.UploadRequest{meta, chunk(tarOf(manifest, [2]string{"../../escape.wasm", "x"}))}, connect.CodeInvalidArgument},
		{"absolute path in the bundle", []*deployv1.UploadRequest{meta, chunk(tarOf(manifest, [2]string{"/etc/cron.d/evil", "x"}))}, connect.CodeInvalidArgument},
		{"not an archive", []*deployv1.UploadRequest{meta, chunk(bytes.Repeat([]byte("not a tar "), 1000))}, connect.CodeInvalidArgument},
		{"no manifest", []*deployv1.UploadRequest{meta, chunk(tarOf([2]string{"m.wasm", "x"}))}, connect.CodeInvalidArgument},
		{"module missing", []*deployv1.UploadRequest{meta, chunk(tarOf(manifest))}, connect.CodeInvalidArgument},
		{"empty upload", nil, connect.CodeInvalidArgument},
		{"chunk before the metadata", []*deployv1.UploadRequest{chunk([]byte("x"))}, connect.CodeInvalidArgument},
		{"metadata twice", []*deployv1.UploadRequest{meta, meta}, connect.CodeInvalidArgument},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		// Over HTTP/2, as the CLI streams: the refusal comes back on the stream even while
		// the client is still sending (over HTTP/1.1 the client may see only a reset).
		stream := deployv1connect.NewDeployServiceClient(h2cClient, e.api, connect.WithInterceptors(bearer{})).Upload(ctx)
		for _, m := range tc.msgs {
			if stream.Send(m) != nil {
				break // refused early; CloseAndReceive says why
			}
		}
		_, err := stream.CloseAndReceive()
		cancel()
		if code := connect.CodeOf(err); code != tc.want && (tc.want != connect.CodeResourceExhausted || code != connect.CodeDeadlineExceeded) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	e.healthy(t, "hostile uploads")
}

var h2cClient = func() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}()

// bearer sends node.TestToken on every call and stream.
type bearer struct{}

func (bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+node.TestToken)
		return next(ctx, req)
	}
}

func (bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+node.TestToken)
		return conn
	}
}

func (bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// rawProxy sends a raw HTTP/1.1 request to the proxy and reads the status line.
func rawProxy(t *testing.T, e *env, req string) (int, error) {
	t.Helper()
	c, err := dialFrom("127.0.0.1", e.n.ProxyAddr())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(c, req) }() // may block while the server refuses
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func headers(n int, size int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-H%d: %s\r\n", i, strings.Repeat("v", size))
	}
	return b.String()
}

// TestHostileProxyRequests sends hostile requests through the proxy: header floods (431),
// bodies over the component's limit (413), slow and stalled bodies (408 at the deadline),
// traversal and unknown names (404), and a silent connection (closed at the header
// deadline).
func TestHostileProxyRequests(t *testing.T) {
	e := newEnv(t)
	get := "GET /victim/ HTTP/1.1\r\nHost: x\r\n"
	for _, tc := range []struct {
		name string
		req  string
		want int
	}{
		{"150 header fields", get + headers(150, 1) + "\r\n", 431},
		{"10,000 header fields", get + headers(10000, 1) + "\r\n", 431},
		{"one 100 KiB header", get + headers(1, 100<<10) + "\r\n", 431},
		{"40 KiB of headers in 20 fields", get + headers(20, 2<<10) + "\r\n", 431},
		{"body declared over 10 MiB", "POST /victim/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n", 413},
		{"negative content length", "POST /victim/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"overflowing content length", "POST /victim/ HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
		{"two content lengths", "POST /victim/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", 400},
		{"chunked body over 10 MiB", "POST /victim/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strings.Repeat(fmt.Sprintf("%x\r\n%s\r\n", 1<<20, strings.Repeat("x", 1<<20)), 11) + "0\r\n\r\n", 413},
		{"bad chunk size", "POST /victim/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
		// The victim answers: its guest sees only its own artifact (an os.Root).
		{"path traversal", "GET /victim/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"encoded traversal", "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"unknown component", "GET /nope/ HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"long host name", "GET / HTTP/1.1\r\nHost: " + strings.Repeat("a", 4000) + ".localhost\r\n\r\n", 404},
		{"bad request line", "GET\r\n\r\n", 400},
		{"HTTP/0.9", "GET /victim/\r\n\r\n", 400},
	} {
		code, err := rawProxy(t, e, tc.req)
		if err != nil || code != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, code, err, tc.want)
		}
	}
	e.healthy(t, "hostile proxy requests")

	// A body that trickles one byte a second never finishes: 408 at the body deadline.
	slow := func(pause time.Duration) (int, time.Duration) {
		c, err := dialFrom("127.0.0.1", e.n.ProxyAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_, _ = io.WriteString(c, "POST /victim/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(pause):
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("slow body: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	if code, d := slow(500 * time.Millisecond); code != 408 || d > testDoors.Proxy.BodyTimeout+answerBound {
		t.Errorf("trickling body: %d after %s, want 408 by %s", code, d, testDoors.Proxy.BodyTimeout)
	}
	if code, d := slow(time.Hour); code != 408 || d > testDoors.Proxy.BodyIdle+answerBound {
		t.Errorf("stalled body: %d after %s, want 408 by %s", code, d, testDoors.Proxy.BodyIdle)
	}

	// A connection that never sends its headers is closed at the header deadline.
	c, err := dialFrom("127.0.0.1", e.n.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\n")
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(c)
	c.Close()
	if d := time.Since(start); err != nil || d > testDoors.Proxy.ReadHeaderTimeout+answerBound {
		t.Errorf("silent headers: closed after %s (%v), want by %s", d, err, testDoors.Proxy.ReadHeaderTimeout)
	}
	e.healthy(t, "slow bodies and headers")
}

// TestHostileConnectionFloods opens more connections from one address than each door
// allows: the ones over the bound are refused (429 with Retry-After on HTTP doors, closed
// on Raft), and clients from another address are served meanwhile.
func TestHostileConnectionFloods(t *testing.T) {
	e := newEnv(t)
	for _, door := range []struct {
		name, addr string
		limit      int
		http       bool
	}{
		{"proxy", e.n.ProxyAddr(), testDoors.Proxy.MaxConnsPerAddr, true},
		{"api", e.n.APIAddr(), testDoors.API.MaxConnsPerAddr, true},
		{"raft", e.n.RaftAddr(), testDoors.Raft.MaxConnsPerAddr, false},
	} {
		var held []net.Conn
		for range door.limit {
			c, err := dialFrom("127.0.0.2", door.addr)
			if err != nil {
				t.Fatalf("%s: dial: %v", door.name, err)
			}
			held = append(held, c)
		}
		// The next one from the same address is over the bound. Accepting is
		// asynchronous, so try a few until one is refused.
		refused := false
		for i := 0; i < 20 && !refused; i++ {
			c, err := dialFrom("127.0.0.2", door.addr)
			if err != nil {
				t.Fatalf("%s: dial: %v", door.name, err)
			}
			held = append(held, c)
			_ = c.SetDeadline(time.Now().Add(answerBound))
			if door.http {
				_, _ = io.WriteString(c, "GET /bystander/ HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err == nil {
					resp.Body.Close()
					refused = resp.StatusCode == 429 && resp.Header.Get("Retry-After") != ""
				}
			} else {
				_, err := c.Read(make([]byte, 1))
				var ne net.Error
				refused = err != nil && !(errors.As(err, &ne) && ne.Timeout())
			}
		}
		if !refused {
			t.Errorf("%s: %d connections from one address and none refused", door.name, len(held))
		}
		e.healthy(t, door.name+" connection flood")
		for _, c := range held {
			c.Close()
		}
	}
	// Raft still commits: a write goes through.
	e.deploy(t, "victim", 2)
	e.healthy(t, "connection floods")
}

// TestHostileComponentFlood floods the victim (concurrency 2: 2 in flight, 2 queued) with
// slow-body requests: the victim's extra requests get 429 with Retry-After at once, and the
// bystander keeps its latency.
func TestHostileComponentFlood(t *testing.T) {
	e := newEnv(t)
	const flood = 40
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	statuses := make(chan int, flood)
	for i := range flood {
		c, err := dialFrom(fmt.Sprintf("127.0.0.%d", 2+i%4), e.n.ProxyAddr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_, _ = io.WriteString(c, "POST /victim/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx")
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
				statuses <- -429
				return
			}
			statuses <- resp.StatusCode
		}()
	}
	// The bystander answers meanwhile.
	lat := latencies(t, e, "bystander", 50)
	if p99 := lat[len(lat)*99/100]; p99 > answerBound/4 {
		t.Errorf("bystander p99 %s during the victim's flood", p99)
	}
	// All but the two in flight and the two queued are refused with 429 and Retry-After
	// (the queued ones too, after the queue's wait); those in flight get 408 at the body
	// deadline.
	got := map[int]int{}
	deadline := time.After(30 * time.Second)
	for range flood {
		select {
		case s := <-statuses:
			got[s]++
		case <-deadline:
			t.Fatalf("statuses so far %v", got)
		}
	}
	if got[429] < flood-4 || got[429]+got[408] != flood {
		t.Errorf("flood of %d slow requests to a component of concurrency 2: statuses %v, want at least %d 429s with Retry-After, the rest 408", flood, got, flood-4)
	}
	e.healthy(t, "component flood")
}

// latencies sends n GETs to component and returns their latencies, sorted.
func latencies(t *testing.T, e *env, component string, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	for range n {
		start := time.Now()
		code, _, err := e.get(component, "/")
		if err != nil || code != 200 {
			t.Fatalf("%s: %d %v", component, code, err)
		}
		out = append(out, time.Since(start))
	}
	sortDurations(out)
	return out
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// TestHostileWebhookLogs sends 300 webhook deliveries nobody linked: each is refused, the
// node's log gets at most a few lines, and the lines held back are counted on /metrics.
func TestHostileWebhookLogs(t *testing.T) {
	e := newEnv(t)
	for i := range 300 {
		req, _ := http.NewRequest("POST", e.api+"/github/webhook", strings.NewReader(`{"repository":{"full_name":"evil/repo"}}`))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprint(i))
		req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("unlinked delivery answered %d", resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", e.api+"/metrics", nil)
	resp, err := node.TestHTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var dropped float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, `v9_log_lines_dropped_total{source="webhook"}`) {
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &dropped)
		}
	}
	if dropped < 290 {
		t.Fatalf("v9_log_lines_dropped_total{source=\"webhook\"} = %v after 300 refused deliveries, want >= 290", dropped)
	}
	e.healthy(t, "webhook flood")
}

// TestHostileSlowBodyFlood holds -hostile.flood slow-body requests (each announcing 10 MiB
// and sending a byte a second) in flight to "sink", a component whose concurrency admits
// them all, from 40 addresses, and checks the budget: the test process (node and clients) grows by less
// than 2 MiB per connection plus 64 MiB, its descriptors by at most two per connection,
// the bystander's p99 stays under a quarter of answerBound, and once the body deadline has
// passed the descriptors are given back.
func TestHostileSlowBodyFlood(t *testing.T) {
	e := newEnv(t)
	n := *floodSize
	e.deploy(t, "sink", n)
	base := latencies(t, e, "bystander", 200)
	fd0 := fds()
	rss0, _ := rss("self")

	stopFlood := slowBodies(t, e.n.ProxyAddr(), n)
	under := latencies(t, e, "bystander", 200)
	rss1, _ := rss("self")
	fd1 := fds()
	p99 := func(d []time.Duration) time.Duration { return d[len(d)*99/100] }
	t.Logf("%d slow-body connections: bystander p99 %s (no flood %s), process RSS +%d MiB, descriptors +%d",
		n, p99(under), p99(base), (rss1-rss0)>>20, fd1-fd0)
	if p99(under) > answerBound/4 {
		t.Errorf("bystander p99 %s under the flood (no flood: %s)", p99(under), p99(base))
	}
	if grow := rss1 - rss0; grow > int64(n)<<21+64<<20 {
		t.Errorf("RSS grew %d MiB for %d connections", grow>>20, n)
	}
	if grow := fd1 - fd0; grow > 2*n+16 {
		t.Errorf("descriptors grew %d for %d connections", grow, n)
	}
	e.healthy(t, "slow-body flood")
	stopFlood()
	node.Eventually(t, 30*time.Second, func() error {
		if d := fds() - fd0; d > 16 {
			return fmt.Errorf("%d descriptors still open after the flood", d)
		}
		return nil
	})
}
