package hostile

import (
	"flag"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

var (
	extProxy = flag.String("hostile.proxy", "", "flood a real agent's proxy at HOST:PORT (TestFloodExternal; see scripts/hostile-flood.sh)")
	extPid   = flag.String("hostile.pid", "", "the agent's process id, to read its RSS and descriptors")
)

// TestFloodExternal floods a real `v9 agent` (scripts/hostile-flood.sh starts one with the
// components "sink", concurrency 5000, and "bystander"): -hostile.flood slow-body requests
// to sink from 40 loopback addresses, each announcing 10 MiB and sending a byte a second.
// It reports the bystander's p50/p99 with no flood and under it, and the agent's RSS,
// peak RSS and descriptors; the agent must stay under 1 GiB.
func TestFloodExternal(t *testing.T) {
	if *extProxy == "" || *extPid == "" {
		t.Skip("needs -hostile.proxy and -hostile.pid (scripts/hostile-flood.sh)")
	}
	get := func() time.Duration {
		req, _ := http.NewRequest("GET", "http://"+*extProxy+"/", nil)
		req.Host = "bystander.localhost"
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("bystander: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("bystander: %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	sample := func(n int) (p50, p99 time.Duration) {
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = get()
		}
		sortDurations(d)
		return d[n/2], d[n*99/100]
	}
	agentFDs := func() int {
		ents, _ := os.ReadDir("/proc/" + *extPid + "/fd")
		return len(ents)
	}
	for range 50 {
		get() // warm up
	}
	b50, b99 := sample(1000)
	rss0, _ := rss(*extPid)
	fd0 := agentFDs()

	n := *floodSize
	stopFlood := slowBodies(t, *extProxy, n)
	time.Sleep(2 * time.Second) // let the agent accept and start reading every body
	f50, f99 := sample(1000)
	rss1, peak := rss(*extPid)
	fd1 := agentFDs()
	stopFlood()
	t.Logf("bystander with no flood: p50 %s p99 %s", b50, b99)
	t.Logf("bystander under %d slow-body connections: p50 %s p99 %s", n, f50, f99)
	t.Logf("agent RSS %d MiB before, %d MiB under the flood, peak %d MiB; descriptors %d before, %d under the flood",
		rss0>>20, rss1>>20, peak>>20, fd0, fd1)
	if peak > 1<<30 {
		t.Errorf("agent peak RSS %d MiB, budget 1024 MiB", peak>>20)
	}
}
