package node

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The data-plane benchmarks drive their load from two places, side by side:
//
//   - in this process (load), as they always have: the load generator's goroutines share
//     the Go scheduler of the node under test — and of the plain Go server it is compared
//     with — so a request's latency includes waiting behind the other side's goroutines in
//     one run queue;
//   - from a child process (loadProc): this test binary re-executed as a load generator,
//     the same client and code, the same connections and concurrency, with a scheduler of
//     its own. The kernel shares the CPUs between the two processes, as it does between a
//     server and a client such as wrk, and latencies no longer include the in-process
//     scheduler's queue of client goroutines.
//
// Both sides of a comparison always get the same generator.

// loadConcurrency is the clients of every data-plane load run.
const loadConcurrency = benchWriters

// load sends n GETs to url over benchWriters connections and returns req/s and latencies.
func load(b *testing.B, client *http.Client, url string, n int) (float64, []time.Duration) {
	rate, lat, err := loadRun(client, url, n)
	if err != nil {
		b.Fatal(err)
	}
	return rate, lat
}

// loadRun is load without a testing.B, for the child load generator too (loadgen_test.go).
func loadRun(client *http.Client, url string, n int) (float64, []time.Duration, error) {
	return runN(n, func(int) error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

func loadClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: loadConcurrency * 2}, Timeout: 10 * time.Second}
}

// envLoadGen makes the test binary a load generator (TestMain): it reads "url n" lines on
// stdin and answers each with one JSON line of loadResult.
const envLoadGen = "V9_TEST_LOADGEN"

type loadResult struct {
	Rate float64         `json:"rate"`
	Lat  []time.Duration `json:"lat"`
	Err  string          `json:"err,omitempty"`
}

// loadGenMain is the child process's main.
func loadGenMain() int {
	client := loadClient()
	in := bufio.NewScanner(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		url, count, _ := strings.Cut(in.Text(), " ")
		n, err := strconv.Atoi(count)
		var res loadResult
		if err != nil {
			res.Err = err.Error()
		} else {
			res.Rate, res.Lat, err = loadRun(client, url, n)
			if err != nil {
				res.Err = err.Error()
			}
		}
		if err := enc.Encode(res); err != nil {
			return 1
		}
	}
	return 0
}

// childLoad is a running child load generator.
type childLoad struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
	mu  sync.Mutex
}

// newChildLoad starts a child load generator, stopped at the end of the benchmark.
func newChildLoad(b testing.TB) *childLoad {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envLoadGen+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	g := &childLoad{cmd: cmd, in: in, out: json.NewDecoder(out)}
	b.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	return g
}

// load sends n GETs to url from the child over loadConcurrency connections.
func (g *childLoad) load(b testing.TB, url string, n int) (float64, []time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, err := fmt.Fprintf(g.in, "%s %d\n", url, n); err != nil {
		b.Fatal(err)
	}
	var res loadResult
	if err := g.out.Decode(&res); err != nil {
		b.Fatal(err)
	}
	if res.Err != "" {
		b.Fatal(res.Err)
	}
	return res.Rate, res.Lat
}
