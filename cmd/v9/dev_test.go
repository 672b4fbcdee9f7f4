package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/velocity9/v9/internal/testkit"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
)

// TestDevBinary builds the real v9 binary, runs `v9 dev` as a child process, creates a
// component with the binary, stops the cluster with SIGINT, starts it again on the same data
// dir and finds the component there.
func TestDevBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a cluster: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "v9")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	firsts := freePortRuns(t, 3, 3)
	dir := t.TempDir()
	args := []string{"dev", "--data-dir", dir,
		"--api-port", strconv.Itoa(firsts[0]),
		"--proxy-port", strconv.Itoa(firsts[1]),
		"--raft-port", strconv.Itoa(firsts[2])}

	dev := startDev(t, bin, args)
	nodes := dev.waitReady(t, 4*time.Minute) // the first start compiles and deploys the example
	if len(nodes) != 3 {
		t.Fatalf("v9 dev printed %d nodes, want 3: %v", len(nodes), nodes)
	}
	for i := range 3 {
		id := fmt.Sprintf("n%d", i+1)
		want := fmt.Sprintf("127.0.0.1:%d", firsts[0]+i)
		if nodes[id] != want {
			t.Fatalf("%s API address %q, want %q", id, nodes[id], want)
		}
	}
	// A new data dir: v9 dev deployed the example and printed its URL last, and it answers.
	url := dev.waitExampleURL(t, 3*time.Minute)
	if want := fmt.Sprintf("http://127.0.0.1:%d/hello/", firsts[1]); url != want {
		t.Fatalf("example URL %q, want %q", url, want)
	}
	if code, body, err := httpGet(url); code != 200 || !strings.Contains(body, "hello from wasm") {
		t.Fatalf("GET %s: %d %q %v", url, code, body, err)
	}
	runBin(t, bin, "--addr", nodes["n2"], "component", "create", "greeter", "--runtime", "wasm", "--env", "GREETING=hi", "--max", "2")
	dev.interrupt(t)

	// Again without the port flags: the data dir recorded them.
	dev = startDev(t, bin, []string{"dev", "--data-dir", dir})
	nodes = dev.waitReady(t, 60*time.Second)
	if want := fmt.Sprintf("127.0.0.1:%d", firsts[0]); nodes["n1"] != want {
		t.Fatalf("restart without port flags: n1 API %q, want the recorded %q", nodes["n1"], want)
	}
	if again := dev.waitExampleURL(t, time.Minute); again != url {
		t.Fatalf("after restart, example URL %q, want %q", again, url)
	}
	out := runBin(t, bin, "--addr", nodes["n3"], "--json", "component", "get", "greeter", "--consistent")
	var res componentv1.GetResponse
	if err := protojson.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("get --json: %v\n%s", err, out)
	}
	if c := res.GetComponent(); c.GetSpec().GetEnv()["GREETING"] != "hi" || c.GetSpec().GetScaleMax() != 2 {
		t.Fatalf("after restart, component = %v", c)
	}

	// n3 leaves; the next `v9 dev` still starts, and n3 is a member again (issue 11).
	runBin(t, bin, "--addr", nodes["n3"], "cluster", "leave")
	dev.interrupt(t)
	dev = startDev(t, bin, args)
	nodes = dev.waitReady(t, 60*time.Second)
	waitFor := time.Now().Add(30 * time.Second)
	for {
		out := runBin(t, bin, "--addr", nodes["n1"], "cluster", "status")
		if regexp.MustCompile(`Members:\s+3 \(3 voters\)`).MatchString(out) {
			break
		}
		if time.Now().After(waitFor) {
			t.Fatalf("n3 not a member again after leave and restart:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(dev.stderr.String(), "asking to rejoin") {
		t.Fatalf("no message that n3 rejoins:\n%s", dev.stderr.String())
	}
	dev.interrupt(t)
}

// devProcess is a running `v9 dev`.
type devProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *testkit.Buffer
	done           chan struct{}
	err            error // of Wait, once done is closed
}

func startDev(t *testing.T, bin string, args []string) *devProcess {
	t.Helper()
	d := &devProcess{cmd: exec.Command(bin, args...), stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}, done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stderr
	d.cmd.Env = append(os.Environ(), "V9_ADDR=", "V9_TOKEN=")
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start v9 dev: %v", err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("v9 %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), d.stdout, d.stderr)
		}
	})
	return d
}

var devNodeLine = regexp.MustCompile(`(?m)^(n\d+)\s+(\S+:\d+)\s+(\S+:\d+)\s+(\S+)\s*$`)

// waitReady waits until v9 dev has printed its node table and returns id → API address.
func (d *devProcess) waitReady(t *testing.T, timeout time.Duration) map[string]string {
	t.Helper()
	out := d.waitOutput(t, timeout, "its node table", func(out string) bool { return strings.Contains(out, "V9_ADDR=") })
	nodes := map[string]string{}
	for _, m := range devNodeLine.FindAllStringSubmatch(out, -1) {
		nodes[m[1]] = m[2]
	}
	return nodes
}

// waitExampleURL waits for the line v9 dev prints last on a new data dir, the example's URL.
func (d *devProcess) waitExampleURL(t *testing.T, timeout time.Duration) string {
	t.Helper()
	out := d.waitOutput(t, timeout, "the example's URL", devExampleLine.MatchString)
	return devExampleLine.FindStringSubmatch(out)[1]
}

// waitOutput polls v9 dev's stdout until done says it holds what is awaited, and returns it.
func (d *devProcess) waitOutput(t *testing.T, timeout time.Duration, what string, done func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if out := d.stdout.String(); done(out) {
			return out
		}
		select {
		case <-d.done:
			t.Fatalf("v9 dev exited before printing %s: %v", what, d.err)
		case <-deadline.C:
			t.Fatalf("v9 dev did not print %s within %s", what, timeout)
		case <-tick.C:
		}
	}
}

var devExampleLine = regexp.MustCompile(`(?m)^(http://\S+/hello/)\n\z`)

// interrupt sends SIGINT and wants a clean exit within the shutdown timeout.
func (d *devProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("signal v9 dev: %v", err)
	}
	select {
	case <-d.done:
		if d.err != nil {
			t.Fatalf("v9 dev exited with %v after SIGINT", d.err)
		}
	case <-time.After(2 * shutdownTimeout):
		t.Fatalf("v9 dev did not exit within %s of SIGINT", 2*shutdownTimeout)
	}
}

// runBin runs the v9 binary as a client and returns its stdout; it must exit 0.
func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	// The binary finds the token the way a user's shell would: in the file v9 dev wrote.
	cmd.Env = append(os.Environ(), "V9_TOKEN=")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("v9 %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, &stdout, &stderr)
	}
	return stdout.String()
}

// freePortRuns finds `runs` disjoint runs of n consecutive free ports on 127.0.0.1 and
// returns the first port of each. It holds every port until all are found, so the runs
// cannot collide with each other.
func freePortRuns(t *testing.T, runs, n int) []int {
	t.Helper()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var firsts []int
	for attempt := 0; len(firsts) < runs; attempt++ {
		if attempt == 100 {
			t.Fatalf("no %d runs of %d free consecutive ports", runs, n)
		}
		l0, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		first := l0.Addr().(*net.TCPAddr).Port
		run := []net.Listener{l0}
		for k := 1; k < n && first+k <= 65535; k++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(first+k)))
			if err != nil {
				break
			}
			run = append(run, l)
		}
		held = append(held, run...) // a failed run stays held so it is not picked again
		if len(run) == n {
			firsts = append(firsts, first)
		}
	}
	return firsts
}
