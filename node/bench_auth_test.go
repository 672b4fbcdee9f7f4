package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/rpc/server"
)

// BenchmarkAuthCost measures what authentication adds to one API call: p50 and p99 of
// ComponentService.Get with a token through the node's API (interceptor: hash, lookup,
// role check) against the same handler on the same node served without the interceptor.
// Rounds alternate between the two sides. Run with -benchtime=1x.
func BenchmarkAuthCost(b *testing.B) {
	c := NewTestCluster(b, 1)
	n := c.Nodes[0]
	n.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	if _, err := createComponent(ctx, n, "bench-get"); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(componentv1connect.NewComponentServiceHandler(&server.Components{B: n}))
	open := httptest.NewServer(mux)
	defer open.Close()

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	withToken := componentv1connect.NewComponentServiceClient(TokenHTTPClient(TestToken), "http://"+n.APIAddr())
	noAuth := componentv1connect.NewComponentServiceClient(hc, open.URL)
	get := func(cli componentv1connect.ComponentServiceClient) func(int) error {
		return func(int) error {
			_, err := cli.Get(ctx, connect.NewRequest(&componentv1.GetRequest{Name: "bench-get"}))
			return err
		}
	}
	const calls = 2000
	var tokLat, openLat []time.Duration
	for round := 0; round < 5; round++ {
		_, l := runSerial(b, calls, get(noAuth))
		openLat = append(openLat, l...)
		_, l = runSerial(b, calls, get(withToken))
		tokLat = append(tokLat, l...)
	}
	b.ReportMetric(float64(pct(openLat, 0.5).Microseconds()), "noauth-p50-us")
	b.ReportMetric(float64(pct(tokLat, 0.5).Microseconds()), "token-p50-us")
	b.ReportMetric(float64(pct(openLat, 0.99).Microseconds()), "noauth-p99-us")
	b.ReportMetric(float64(pct(tokLat, 0.99).Microseconds()), "token-p99-us")
}

// runSerial runs n calls one after the other and returns calls/s and latencies.
func runSerial(b *testing.B, n int, call func(int) error) (float64, []time.Duration) {
	lat := make([]time.Duration, n)
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		if err := call(i); err != nil {
			b.Fatalf("call %d: %v", i, err)
		}
		lat[i] = time.Since(t0)
	}
	return float64(n) / time.Since(start).Seconds(), lat
}

// BenchmarkWriteThroughputTLS compares component writes through a follower (forwarded to the
// leader over the internal service, replicated by Raft) on a three-node cluster with mutual
// TLS between nodes and on one without (InsecureNoTLS), production Raft timings, fsync on.
// Rounds alternate between the clusters. Run with -benchtime=1x.
func BenchmarkWriteThroughputTLS(b *testing.B) {
	quiet := func(c *TestCluster) {
		for _, n := range c.Nodes {
			n.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
	}
	withTLS := NewTestClusterOpts(b, 3, TestOptions{Raft: RaftConfig{}})
	noTLS := NewTestClusterOpts(b, 3, TestOptions{Raft: RaftConfig{}, NoTLS: true})
	quiet(withTLS)
	quiet(noTLS)
	tlsCli, plainCli := componentClient(withTLS.Follower(b)), componentClient(noTLS.Follower(b))
	write := func(cli componentv1connect.ComponentServiceClient, base int) func(int) error {
		return func(i int) error {
			// Two clusters on a shared 2-core machine lose a leader now and then: a write
			// cut off by an election is retried (counted in the latency), and one that
			// turns out to have been applied counts as done.
			var err error
			for try := 0; try < 5; try++ {
				_, err = cli.Create(context.Background(), connect.NewRequest(&componentv1.CreateRequest{
					Name: fmt.Sprintf("bench-%06d", base+i), Runtime: statev1.Runtime_RUNTIME_WASM,
					Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Env: map[string]string{"GREETING": "hi"}},
				}))
				switch {
				case err == nil:
					return nil
				case try > 0 && connect.CodeOf(err) == connect.CodeAlreadyExists:
					return nil
				case connect.CodeOf(err) != connect.CodeUnavailable:
					return err
				}
			}
			return err
		}
	}
	var tlsRates, plainRates, ratios []float64
	var tlsLat, plainLat []time.Duration
	for round := 0; round < benchRounds; round++ {
		r, l := runWrites(b, benchWrites, write(plainCli, round*benchWrites))
		plainRates, plainLat = append(plainRates, r), append(plainLat, l...)
		r, l = runWrites(b, benchWrites, write(tlsCli, round*benchWrites))
		tlsRates, tlsLat = append(tlsRates, r), append(tlsLat, l...)
		ratios = append(ratios, r/plainRates[len(plainRates)-1])
	}
	b.ReportMetric(median(plainRates), "notls-writes/s")
	b.ReportMetric(median(tlsRates), "tls-writes/s")
	b.ReportMetric(median(ratios), "tls/notls")
	b.ReportMetric(float64(pct(plainLat, 0.5).Microseconds())/1000, "notls-p50-ms")
	b.ReportMetric(float64(pct(tlsLat, 0.5).Microseconds())/1000, "tls-p50-ms")
}
