package hostile

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/internal/bounds"
	"github.com/velocity9/v9/node"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
	"github.com/velocity9/v9/runtime/wasm/wasmtest"
)

var floodSize = flag.Int("hostile.flood", 200, "slow-body connections of the flood tests (make hostile: 2000)")

// The doors of the test node: short deadlines so that the suite is quick, the rest at
// their defaults.
var testDoors = bounds.Doors{
	API:   bounds.Config{MaxConnsPerAddr: 64, BodyTimeout: 20 * time.Second, BodyIdle: 3 * time.Second, ReadHeaderTimeout: time.Second},
	Proxy: bounds.Config{MaxConnsPerAddr: 64, BodyTimeout: 3 * time.Second, BodyIdle: 2 * time.Second, ReadHeaderTimeout: time.Second},
	Raft:  bounds.Config{MaxConnsPerAddr: 16},
}

// answerBound is how fast a bystander must be answered while the node is under attack.
const answerBound = 2 * time.Second

// env is one node serving two wasm components: "victim" (concurrency 2), which the attacks
// aim at, and "bystander", which must keep answering.
type env struct {
	c     *node.TestCluster
	n     *node.Node
	api   string   // http://host:port of the API
	names []string // the components deployed, sorted
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := node.NewTestClusterOpts(t, 1, node.TestOptions{Configure: func(cfg *node.Config) {
		cfg.Doors = testDoors
	}})
	e := &env{c: c, n: c.Nodes[0], api: "http://" + c.Nodes[0].APIAddr()}
	e.deploy(t, "victim", 2)
	e.deploy(t, "bystander", 0)
	return e
}

// deploy uploads a hand-assembled wasm guest as component name and waits until it answers.
func (e *env) deploy(t *testing.T, name string, concurrency int) {
	t.Helper()
	dir := t.TempDir()
	manifest := fmt.Sprintf("name = %q\nruntime = \"wasm\"\n[wasm]\nmodule = \"m.wasm\"\n", name)
	if concurrency > 0 {
		manifest += fmt.Sprintf("[limits]\nconcurrency = %d\n", concurrency)
	}
	write(t, filepath.Join(dir, "v9.toml"), []byte(manifest))
	write(t, filepath.Join(dir, "m.wasm"), wasmtest.TinyCGI("Content-Type: text/plain\n\nhello from "+name+"\n"))
	var buf bytes.Buffer
	if _, err := deploy.Pack(dir, &buf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream := deployv1connect.NewDeployServiceClient(node.TestHTTPClient, e.api).Upload(ctx)
	_ = stream.Send(&deployv1.UploadRequest{Part: &deployv1.UploadRequest_Meta{Meta: &deployv1.UploadMeta{CommitMessage: "hostile"}}})
	_ = stream.Send(&deployv1.UploadRequest{Part: &deployv1.UploadRequest_Chunk{Chunk: buf.Bytes()}})
	if _, err := stream.CloseAndReceive(); err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
	if !slices.Contains(e.names, name) {
		e.names = append(e.names, name)
		slices.Sort(e.names)
	}
	node.Eventually(t, 30*time.Second, func() error {
		code, body, err := e.get(name, "/")
		if err != nil || code != 200 || !strings.Contains(body, name) {
			return fmt.Errorf("%s answers %d %q %v", name, code, body, err)
		}
		return nil
	})
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// get sends GET path to component name through the node's proxy.
func (e *env) get(name, path string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+e.n.ProxyAddr()+path, nil)
	req.Host = name + ".localhost"
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// healthy checks what every case must leave intact: the bystander answers within
// answerBound, the API answers, and the state holds the components as deployed (no
// refused input created, changed or lost anything).
func (e *env) healthy(t *testing.T, after string) {
	t.Helper()
	start := time.Now()
	code, body, err := e.get("bystander", "/")
	if err != nil || code != 200 || !strings.Contains(body, "bystander") {
		t.Fatalf("after %s: bystander answered %d %q %v", after, code, body, err)
	}
	if d := time.Since(start); d > answerBound {
		t.Fatalf("after %s: bystander took %s (bound %s)", after, d, answerBound)
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerBound)
	defer cancel()
	resp, err := componentv1connect.NewComponentServiceClient(node.TestHTTPClient, e.api).
		List(ctx, connect.NewRequest(&componentv1.ListRequest{}))
	if err != nil {
		t.Fatalf("after %s: API list: %v", after, err)
	}
	var names []string
	for _, c := range resp.Msg.Components {
		names = append(names, c.Name)
		if c.Name == "victim" && c.GetSpec().GetConcurrency() != 2 {
			t.Fatalf("after %s: victim's spec changed: %v", after, c.GetSpec())
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, e.names) {
		t.Fatalf("after %s: components %v, want %v", after, names, e.names)
	}
}

// dialFrom opens a TCP connection from a chosen loopback address, so that a flood from
// 127.0.0.2 meets the per-address bound while the checks from 127.0.0.1 do not.
// slowBodies opens n connections to addr from 40 loopback addresses (each under the
// per-address bound), each announcing a 10 MiB POST to "sink" and sending one byte a second.
// The returned func stops them and closes the connections.
func slowBodies(t testing.TB, addr string, n int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var conns []net.Conn
	for i := range n {
		c, err := dialFrom(fmt.Sprintf("127.0.0.%d", 2+i%40), addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		_, _ = io.WriteString(c, "POST /sink/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\nx")
		wg.Add(1)
		go func() { // one byte a second until the node gives up or stop
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-time.After(time.Second):
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
	}
	return func() {
		close(done)
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}
}

func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return d.Dial("tcp", addr)
}

// fds counts this process's open file descriptors.
func fds() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// rss is this process's resident memory now and at its peak, in bytes.
func rss(pid string) (now, peak int64) {
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			now = kb << 10
		}
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			peak = kb << 10
		}
	}
	return now, peak
}
