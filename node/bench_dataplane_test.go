//go:build !race

package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/velocity9/v9/examples/hello-http/hello"
	"github.com/velocity9/v9/runtime/wasm/wasmtest"
)

const (
	loadRequests = 3000
	loadRounds   = 5
)

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkProxyWasmVsPlainGo (P1) compares a wasm hello component served through a
// node's proxy with a plain Go net/http server answering the same body, same load generator
// and concurrency, rounds interleaved. "go-guest" is examples/hello-wasm built with Go (a
// 2.6 MB module whose instantiation dominates); "tiny-guest" a hand-assembled CGI module
// that answers the same bytes, where the proxy and executor's own cost shows. Run with
// -benchtime=1x.
func BenchmarkProxyWasmVsPlainGo(b *testing.B) {
	b.Run("go-guest", func(b *testing.B) { benchProxyVsPlain(b, helloDirB(b), "hello from wasm  /x\n") })
	tiny := b.TempDir()
	body := "hello from wasm\n"
	mustWrite(b, filepath.Join(tiny, "hello.wasm"), wasmtest.TinyCGI("Content-Type: text/plain\n\n"+body))
	mustWrite(b, filepath.Join(tiny, "v9.toml"), []byte("name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"hello.wasm\"\n"))
	b.Run("tiny-guest", func(b *testing.B) { benchProxyVsPlain(b, tiny, body) })
}

func mustWrite(b *testing.B, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
}

func benchProxyVsPlain(b *testing.B, dir, body string) {
	c := NewTestClusterWith(b, 1, RaftConfig{})
	quiet(c)
	n := c.Nodes[0]
	if _, err := upload(context.Background(), n, dir); err != nil {
		b.Fatal(err)
	}
	waitServing(b, []*Node{n}, "")
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))
	defer plain.Close()
	client := loadClient()
	compareLoad(b, client, plain.URL+"/hello/x", "http://"+n.ProxyAddr()+"/hello/x")
}

// compareLoad runs loadRounds interleaved rounds against a plain Go server and v9 and
// reports rates, their ratio and latencies: first with the load generated in this process,
// then from a child process (metrics prefixed "proc-"; loadgen_test.go says why both).
func compareLoad(b *testing.B, client *http.Client, goURL, v9URL string) {
	compareRounds(b, "", func(url string, n int) (float64, []time.Duration) { return load(b, client, url, n) }, goURL, v9URL)
	gen := newChildLoad(b)
	compareRounds(b, "proc-", func(url string, n int) (float64, []time.Duration) { return gen.load(b, url, n) }, goURL, v9URL)
}

// compareRounds runs the interleaved rounds with one load generator. cpu-us/req is the CPU time this process used per request while a side ran: with the load in
// a child process ("proc-"), the server's alone, which holds on a machine busy with other
// work, when rates do not.
func compareRounds(b *testing.B, prefix string, load func(url string, n int) (float64, []time.Duration), goURL, v9URL string) {
	var ratios, goRates, v9Rates, goCPU, v9CPU []float64
	var goLat, v9Lat []time.Duration
	perReq := func(c0 time.Duration) float64 {
		return float64((processCPU() - c0).Microseconds()) / loadRequests
	}
	for i := 0; i < loadRounds; i++ {
		c0 := processCPU()
		g, gl := load(goURL, loadRequests)
		goCPU = append(goCPU, perReq(c0))
		c0 = processCPU()
		v, vl := load(v9URL, loadRequests)
		v9CPU = append(v9CPU, perReq(c0))
		goRates, v9Rates = append(goRates, g), append(v9Rates, v)
		goLat, v9Lat = append(goLat, gl...), append(v9Lat, vl...)
		ratios = append(ratios, v/g)
	}
	b.ReportMetric(median(goCPU), prefix+"go-cpu-us/req")
	b.ReportMetric(median(v9CPU), prefix+"v9-cpu-us/req")
	b.ReportMetric(median(goRates), prefix+"go-req/s")
	b.ReportMetric(median(v9Rates), prefix+"v9-req/s")
	b.ReportMetric(median(ratios), prefix+"v9/go")
	b.ReportMetric(ms(pct(goLat, 0.5)), prefix+"go-p50-ms")
	b.ReportMetric(ms(pct(goLat, 0.99)), prefix+"go-p99-ms")
	b.ReportMetric(ms(pct(v9Lat, 0.5)), prefix+"v9-p50-ms")
	b.ReportMetric(ms(pct(v9Lat, 0.99)), prefix+"v9-p99-ms")
}

// BenchmarkProxyRemoteHop compares a request through a node without a local instance (one
// forwarding hop) with the same request through the node that runs the instance.
func BenchmarkProxyRemoteHop(b *testing.B) {
	c := NewTestClusterWith(b, 2, RaftConfig{})
	quiet(c)
	if _, err := upload(context.Background(), c.Nodes[0], helloDirB(b)); err != nil {
		b.Fatal(err)
	}
	local, remote := runningNode(b, c), (*Node)(nil)
	for _, n := range c.Nodes {
		if n != local {
			remote = n
		}
	}
	waitServing(b, []*Node{remote}, "")
	client := loadClient()
	var ratios []float64
	var lLat, rLat []time.Duration
	for i := 0; i < loadRounds; i++ {
		l, ll := load(b, client, "http://"+local.ProxyAddr()+"/hello/x", loadRequests)
		r, rl := load(b, client, "http://"+remote.ProxyAddr()+"/hello/x", loadRequests)
		ratios = append(ratios, r/l)
		lLat, rLat = append(lLat, ll...), append(rLat, rl...)
	}
	b.ReportMetric(median(ratios), "remote/local")
	b.ReportMetric(ms(pct(lLat, 0.5)), "local-p50-ms")
	b.ReportMetric(ms(pct(rLat, 0.5)), "remote-p50-ms")
	b.ReportMetric(ms(pct(lLat, 0.99)), "local-p99-ms")
	b.ReportMetric(ms(pct(rLat, 0.99)), "remote-p99-ms")
}

func helloDirB(b *testing.B) string { return helloDirTB(b, "") }

// runningNode waits for a node that runs an instance of "hello" and returns it.
func runningNode(b *testing.B, c *TestCluster) *Node {
	var local *Node
	Eventually(b, 60*time.Second, func() error {
		for _, n := range c.Nodes {
			if n.dp.Running("hello") > 0 {
				local = n
				return nil
			}
		}
		return fmt.Errorf("no instance of hello started")
	})
	return local
}

// BenchmarkProxyWarmVsNative (P1b, P0) serves examples/hello-http, an ordinary http.Handler
// built as a reactor (wasm.abi = "http"), warm through the proxy of the node that runs it in a
// three-node cluster with production Raft timings, against the very same handler served by
// plain net/http; rounds interleaved. "elections" is how much the Raft term grew over the
// load (0: no election), "elections-idle" the same over an idle period as long as one round.
// Run with -benchtime=1x.
func BenchmarkProxyWarmVsNative(b *testing.B) {
	c := NewTestClusterWith(b, 3, RaftConfig{
		HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond, CommitTimeout: 20 * time.Millisecond,
	})
	quiet(c)
	if _, err := upload(context.Background(), c.Nodes[0], warmDirTB(b, "", "")); err != nil {
		b.Fatal(err)
	}
	local := runningNode(b, c)
	waitServing(b, []*Node{local}, "")
	native := httptest.NewServer(http.HandlerFunc(hello.Handler))
	defer native.Close()
	client := loadClient()
	term := func() (t uint64) {
		for _, n := range c.Nodes {
			v, _ := strconv.ParseUint(n.raft.r.Stats()["term"], 10, 64)
			t = max(t, v)
		}
		return t
	}
	// The same cluster left idle first, as long as one round of load, says how many elections
	// the machine causes without any request.
	t0 := time.Now()
	load(b, client, native.URL+"/hello/x", loadRequests)
	load(b, client, "http://"+local.ProxyAddr()+"/hello/x", loadRequests)
	idle := time.Since(t0)
	term1 := term()
	time.Sleep(idle)
	b.ReportMetric(float64(term()-term1), "elections-idle")
	term0 := term()
	compareLoad(b, client, native.URL+"/hello/x", "http://"+local.ProxyAddr()+"/hello/x")
	b.ReportMetric(float64(term()-term0), "elections")
}
