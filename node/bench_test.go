package node

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/fsm"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/transport"
)

// Benchmarks here measure; they assert nothing about speed. Both sides of a comparison run
// interleaved in the same process, because these machines are shared and noisy.

const (
	benchWriters = 32  // concurrent clients
	benchWrites  = 600 // writes per round per side
	benchRounds  = 5
)

// benchLoaded gives both sides of BenchmarkWriteThroughput the same slower Raft timeouts
// (2 s heartbeat and election, 1 s leader lease), so that a heavily loaded machine does not
// depose the leader in the middle of a run; without it both run the production defaults.
var benchLoaded = flag.Bool("bench.loaded", false, "BenchmarkWriteThroughput: slower Raft timeouts on both sides, for a loaded machine")

type noopFSM struct{}

func (noopFSM) Apply(*raft.Log) any                 { return nil }
func (noopFSM) Snapshot() (raft.FSMSnapshot, error) { return noopSnap{}, nil }
func (noopFSM) Restore(r io.ReadCloser) error       { return r.Close() }

type noopSnap struct{}

func (noopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (noopSnap) Release()                          {}

// rawCluster is three bare hashicorp/raft replicas with v9's stores (raft-boltdb/v2 with
// fsync, file snapshots, TCP transport), v9's default timings and a no-op FSM. It returns
// the Raft configuration it used (production defaults), for the v9 side to use too.
func rawCluster(b testing.TB) (leader *raft.Raft, rc RaftConfig, stop func()) {
	dir := b.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var parts []*raftParts
	var conf raft.Configuration
	for i := 0; i < 3; i++ {
		cfg := Config{ID: fmt.Sprintf("r%d", i), DataDir: filepath.Join(dir, fmt.Sprint(i)), APIAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", BootstrapExpect: 3, Logger: quiet, InsecureNoTLS: true}
		if err := cfg.setDefaults(); err != nil {
			b.Fatal(err)
		}
		if *benchLoaded {
			cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout, cfg.Raft.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, time.Second
		}
		rc = cfg.Raft
		p, err := openRaft(&cfg, noopFSM{}, &transport.Faults{})
		if err != nil {
			b.Fatal(err)
		}
		parts = append(parts, p)
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(p.stream.Addr().String())})
	}
	for _, p := range parts {
		if err := p.r.BootstrapCluster(conf).Error(); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for leader == nil && time.Now().Before(deadline) {
		for _, p := range parts {
			if p.r.State() == raft.Leader {
				leader = p.r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if leader == nil {
		b.Fatal("raw cluster elected no leader")
	}
	return leader, rc, func() {
		for _, p := range parts {
			p.close()
		}
	}
}

// runWrites runs n writes over benchWriters goroutines and returns writes/s and latencies.
func runWrites(b testing.TB, n int, write func(i int) error) (float64, []time.Duration) {
	rate, lat, err := runN(n, write)
	if err != nil {
		b.Fatal(err)
	}
	return rate, lat
}

// runN is runWrites without a testing.TB: the first error, and how many failed, come back.
func runN(n int, write func(i int) error) (float64, []time.Duration, error) {
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	for w := 0; w < benchWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := write(i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if f := failed.Load(); f > 0 {
		return 0, nil, fmt.Errorf("%d of %d writes failed; first: %v", f, n, firstErr.Load())
	}
	return float64(n) / el.Seconds(), lat, nil
}

// processCPU is the CPU time (user and system) this process has used: per write, it
// measures a side's cost apart from how busy the shared machine is.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// quiesce waits (at most 10 s) until the process uses less than a tenth of a core: each side's
// round starts after the other's aftermath (plans, routing, view writes of the v9 cluster;
// both clusters live in this process), so neither pays for the other's work.
func quiesce() {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		c0 := processCPU()
		time.Sleep(200 * time.Millisecond)
		if processCPU()-c0 < 20*time.Millisecond {
			return
		}
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func pct(l []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func benchCommand(name string) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Name: name, Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Env: map[string]string{"GREETING": "hi"}},
	}}}}
}

// BenchmarkWriteThroughput compares component writes through v9's Connect API on a
// three-node cluster (fsync on, default timings) with raw hashicorp/raft applies of a
// command of the same size to a no-op FSM over the same stores. Run with -benchtime=1x.
//
// Both sides: benchWriters concurrent writers, the same Raft configuration and stores, the
// same serialized command bytes (the raw side applies fsm.EncodeCommand of the command the
// v9 side's request becomes). v9/raw is the median over rounds of v9 writes/s ÷ raw writes/s
// taken seconds apart; it measures everything v9 adds to a bare Raft commit: HTTP and
// Connect with keep-alive connections (one per writer; each call in one write, as the v9
// client sends it: client.OneWrite), the token check, stamping and encoding, the FSM's
// decode, checks, indexes and audit entry, the wait for the local applied index, and the
// CPU the nodes' own loops (routing, scheduling, builds) take.
// cpu-us/write is the CPU time the whole process used per write while a side ran (both
// clusters live in it): on a busy shared machine it is steadier than writes/s.
func BenchmarkWriteThroughput(b *testing.B) {
	// Both sides run the same Raft configuration, the production defaults (a zero
	// RaftConfig would give the test cluster TestRaftConfig's shorter timings instead), the
	// same stores with fsync on the same disk, and benchWriters concurrent writers each.
	rawLeader, rc, stopRaw := rawCluster(b)
	defer stopRaw()
	opts := TestOptions{Raft: rc}
	if *benchLoaded {
		opts.Liveness.TTL = 10 * time.Second // above the slower leader lease
	}
	c := NewTestClusterOpts(b, 3, opts)
	for _, n := range c.Nodes {
		n.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	leader := c.Leader(b)
	cli := componentClient(leader)
	payload, _ := fsm.EncodeCommand(benchCommand("bench-000000"))

	var rawRates, v9Rates, ratios, rawCPU, v9CPU []float64
	var rawLat, v9Lat []time.Duration
	seq := 0
	for round := 0; round < benchRounds; round++ {
		quiesce()
		cpu0 := processCPU()
		r, l := runWrites(b, benchWrites, func(int) error {
			return rawLeader.Apply(payload, 10*time.Second).Error()
		})
		cpu1 := processCPU()
		rawRates, rawLat = append(rawRates, r), append(rawLat, l...)
		rawCPU = append(rawCPU, float64((cpu1-cpu0).Microseconds())/benchWrites)

		quiesce()
		cpu1 = processCPU()
		base := seq
		seq += benchWrites
		r, l = runWrites(b, benchWrites, func(i int) error {
			_, err := cli.Create(context.Background(), connect.NewRequest(&componentv1.CreateRequest{
				Name: fmt.Sprintf("bench-%06d", base+i), Runtime: statev1.Runtime_RUNTIME_WASM,
				Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 3, Env: map[string]string{"GREETING": "hi"}},
			}))
			return err
		})
		v9Rates, v9Lat = append(v9Rates, r), append(v9Lat, l...)
		v9CPU = append(v9CPU, float64((processCPU()-cpu1).Microseconds())/benchWrites)
		ratios = append(ratios, r/rawRates[len(rawRates)-1])
	}
	// Each round's ratio compares two runs taken seconds apart; the median of those ratios
	// is the figure least disturbed by other load on the machine.
	b.ReportMetric(median(rawRates), "raw-writes/s")
	b.ReportMetric(median(v9Rates), "v9-writes/s")
	b.ReportMetric(median(ratios), "v9/raw")
	b.ReportMetric(median(rawCPU), "raw-cpu-us/write")
	b.ReportMetric(median(v9CPU), "v9-cpu-us/write")
	b.ReportMetric(float64(pct(rawLat, 0.5).Microseconds())/1000, "raw-p50-ms")
	b.ReportMetric(float64(pct(rawLat, 0.99).Microseconds())/1000, "raw-p99-ms")
	b.ReportMetric(float64(pct(v9Lat, 0.5).Microseconds())/1000, "v9-p50-ms")
	b.ReportMetric(float64(pct(v9Lat, 0.99).Microseconds())/1000, "v9-p99-ms")
}

// BenchmarkFailover kills the leader of a three-node cluster with default timings and
// measures the time until a write through a surviving node is accepted; median of 5 runs.
func BenchmarkFailover(b *testing.B) {
	var runs []time.Duration
	for i := 0; i < 5; i++ {
		c := NewTestClusterWith(b, 3, RaftConfig{})
		old := c.Leader(b)
		var survivor *Node
		for _, n := range c.Nodes {
			if n != old {
				survivor = n
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if _, err := createComponent(ctx, survivor, "before"); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		old.kill()
		for {
			_, err := createComponent(ctx, survivor, "after")
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				b.Fatalf("no write accepted after failover: %v", err)
			}
		}
		runs = append(runs, time.Since(t0))
		cancel()
		c.stopAll()
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
	b.ReportMetric(float64(runs[len(runs)/2].Milliseconds()), "failover-median-ms")
	b.ReportMetric(float64(runs[len(runs)-1].Milliseconds()), "failover-max-ms")
	b.ReportMetric(float64(runs[0].Milliseconds()), "failover-min-ms")
}
