package container

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/velocity9/v9/runtime"
	"github.com/velocity9/v9/runtime/runtimetest"
)

func TestStartServeStop(t *testing.T) {
	e := newExecutor(t, "node-a")
	var l runtimetest.Logs
	spec := testSpec(t, "p-serve", &l)
	spec.MemoryBytes = 64 << 20
	ctx := context.Background()

	start := time.Now()
	inst, err := e.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(ctx, spec.ID) })
	t.Logf("started in %s", time.Since(start))
	if inst.ID() != spec.ID {
		t.Errorf("ID() = %q, want %q", inst.ID(), spec.ID)
	}

	code, body := get(inst, "/")
	if code != http.StatusOK || !strings.Contains(body, "hello from container hi there") || !strings.Contains(body, "a message from /app") {
		t.Fatalf("GET / = %d %q; want 200 with the greeting and /app/message.txt", code, body)
	}
	// /app is read-only.
	if _, body := get(inst, "/write"); !strings.Contains(body, "read-only file system") {
		t.Errorf("GET /write = %q; want a read-only file system error", body)
	}
	// The memory limit reaches the container's cgroup.
	if code, body := get(inst, "/memory"); code != http.StatusOK || strings.TrimSpace(body) != strconv.Itoa(64<<20) {
		t.Errorf("GET /memory = %d %q; want %d", code, body, 64<<20)
	}
	// Output reaches the component's logs line by line.
	waitFor(t, 5*time.Second, "the listening line in the logs", func() bool { return l.Contains("stdout: hello: listening on") })

	// The spec has what the component contract asks for.
	c, err := e.client.LoadContainer(e.ctx(ctx), e.containerID(spec.ID))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Spec(e.ctx(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Linux.Resources.Memory.Limit; got == nil || *got != 64<<20 {
		t.Errorf("memory limit = %v, want %d", got, 64<<20)
	}
	if !s.Process.NoNewPrivileges {
		t.Error("no_new_privileges is not set")
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("seccomp = %+v, want the default profile", s.Linux.Seccomp)
	}
	// Its own network namespace, the one its labels name, under the executor's state dir.
	if !slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.NetworkNamespace && ns.Path != "" && filepath.Dir(ns.Path) == e.net.nsDir
	}) {
		t.Errorf("the container has no network namespace of v9's: %+v", s.Linux.Namespaces)
	}
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool {
		return m.Destination == "/app" && slices.Contains(m.Options, "ro")
	}) {
		t.Errorf("no read-only /app mount in %+v", s.Mounts)
	}
	labels, err := c.Labels(e.ctx(ctx))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{LabelPlacement: spec.ID, LabelNode: "node-a", LabelComponent: "hello-ctr", LabelDeployment: "d-1", LabelDigest: spec.Digest} {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}

	// Stop is graceful: the example handles SIGTERM and exits 0 well before StopGrace (5s).
	start = time.Now()
	if err := e.Stop(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Stop took %s; want a graceful exit well before the 5s grace period", d)
	}
	waitDone(t, inst, 5*time.Second)
	if err := inst.Err(); err != nil {
		t.Errorf("Err() after Stop = %v, want nil", err)
	}
	if st := inst.(*instance).status; st != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0", st)
	}
	if !l.Contains("stdout: hello: bye") {
		t.Errorf("no graceful shutdown line in the logs:\n%s", l.String())
	}
	if _, err := e.client.LoadContainer(e.ctx(ctx), e.containerID(spec.ID)); !errdefs.IsNotFound(err) {
		t.Errorf("container still there after Stop: %v", err)
	}
	// Its network namespace and its address lease went with it.
	if _, err := os.Stat(labels[LabelNetNS]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("network namespace %q still there after Stop: %v", labels[LabelNetNS], err)
	}
	lease := filepath.Join(e.net.cfg.StateDir, "ipam", "v9-"+e.net.cfg.Bridge, strings.Split(inst.(*instance).addr, ":")[0])
	if _, err := os.Stat(lease); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("address lease %s still there after Stop: %v", lease, err)
	}
	// Idempotent, and unknown ids are fine.
	if err := e.Stop(ctx, spec.ID); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := e.Stop(ctx, "never-started"); err != nil {
		t.Errorf("Stop of an unknown id: %v", err)
	}
	code, _ = get(inst, "/")
	if code != http.StatusBadGateway {
		t.Errorf("GET / after Stop = %d, want 502", code)
	}
}

func TestCrashThenRestart(t *testing.T) {
	e := newExecutor(t, "node-a")
	spec := testSpec(t, "p-crash", nil)
	inst := startInstance(t, e, spec)

	get(inst, "/crash")
	waitDone(t, inst, 10*time.Second)
	if err := inst.Err(); err == nil || !strings.Contains(err.Error(), "exited with status 3") {
		t.Fatalf("Err() = %v, want exited with status 3", err)
	}
	// The reconciler restarts a crashed placement with Start: the exited container is replaced.
	inst2 := startInstance(t, e, spec)
	if code, _ := get(inst2, "/"); code != http.StatusOK {
		t.Fatalf("GET / after restart = %d", code)
	}
	select {
	case <-inst2.Done():
		t.Fatalf("new instance ended: %v", inst2.Err())
	default:
	}
	// A second Start of a running placement is refused.
	if _, err := e.Start(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("Start of a running placement: %v", err)
	}
}

func TestExitBeforeReady(t *testing.T) {
	e := newExecutor(t, "node-a")
	spec := testSpec(t, "p-exit", nil)
	spec.Container.Command = []string{"/hello", "-exit", "7"}
	_, err := e.Start(context.Background(), spec)
	if err == nil {
		t.Fatal("Start succeeded; want an early exit")
	}
	if !strings.Contains(err.Error(), "container exited with status 7 before it was ready") ||
		!strings.Contains(err.Error(), "told to exit with status 7") {
		t.Fatalf("Start error = %q; want the exit status and the last stderr line", err)
	}
	t.Log(err)
	if _, err := e.client.LoadContainer(e.ctx(context.Background()), e.containerID(spec.ID)); !errdefs.IsNotFound(err) {
		t.Errorf("container left after a failed start: %v", err)
	}
}

func TestBadImages(t *testing.T) {
	e := newExecutor(t, "node-a")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	spec := testSpec(t, "p-pull", nil)
	spec.Container = runtime.ContainerSpec{Image: "v9.invalid/no-such-image:1"}
	start := time.Now()
	_, err := e.Start(ctx, spec)
	if err == nil || !strings.Contains(err.Error(), "image v9.invalid/no-such-image:1 not found locally and cannot be pulled") {
		t.Fatalf("Start with an unpullable image: %v", err)
	}
	t.Logf("%v (in %s)", err, time.Since(start))

	spec.Container = runtime.ContainerSpec{Image: "Not A Reference"}
	if _, err := e.Start(ctx, spec); !errors.Is(err, runtime.ErrBadArtifact) {
		t.Errorf("Start with a malformed reference: %v, want ErrBadArtifact", err)
	}
	spec.Container = runtime.ContainerSpec{Image: testImage, ImageArchive: "missing.tar"}
	if _, err := e.Start(ctx, spec); !errors.Is(err, runtime.ErrBadArtifact) || !strings.Contains(err.Error(), "missing.tar") {
		t.Errorf("Start with a missing archive: %v, want ErrBadArtifact naming it", err)
	}
	spec.Container = runtime.ContainerSpec{Image: testImage, ImageArchive: "message.txt"}
	spec.Digest = ""
	if _, err := e.Start(ctx, spec); !errors.Is(err, runtime.ErrBadArtifact) {
		t.Errorf("Start with a file that is no archive: %v, want ErrBadArtifact", err)
	}
	spec.Container = runtime.ContainerSpec{Image: testImage, ImageArchive: "../app/image.tar"}
	if _, err := e.Start(ctx, spec); !errors.Is(err, runtime.ErrBadArtifact) {
		t.Errorf("Start with an archive outside the directory: %v, want ErrBadArtifact", err)
	}
}

func TestAdoptAfterAgentRestart(t *testing.T) {
	ctx := context.Background()
	e1 := newExecutor(t, "node-b")
	spec := testSpec(t, "p-adopt", nil)
	inst1, err := e1.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	pid := inst1.(*instance).task.Pid()
	// The agent goes away; the container stays.
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}
	// It writes to stdout while no agent reads.
	resp, err := http.Get("http://" + inst1.(*instance).addr + "/while-detached")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	var l runtimetest.Logs
	spec.Log = l.Log
	e2 := newExecutor(t, "node-b")
	t.Cleanup(func() { e2.Stop(ctx, spec.ID) })
	other := newExecutor(t, "node-c")
	if ids, err := other.Running(ctx); err != nil || slices.Contains(ids, spec.ID) {
		t.Fatalf("another node's Running = %v, %v; want it without %s", ids, err, spec.ID)
	}
	if _, err := other.Adopt(ctx, spec); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("another node's Adopt: %v, want ErrNotFound", err)
	}
	ids, err := e2.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, spec.ID) {
		t.Fatalf("Running = %v, want %s", ids, spec.ID)
	}
	inst, err := e2.Adopt(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(inst, "/"); code != http.StatusOK || !strings.Contains(body, "hello from container hi there") {
		t.Fatalf("GET / through the adopted instance = %d %q", code, body)
	}
	c, err := e2.client.LoadContainer(e2.ctx(ctx), e2.containerID(spec.ID))
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(e2.ctx(ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	if task.Pid() != pid {
		t.Errorf("task pid %d after adopt, was %d: the container was restarted", task.Pid(), pid)
	}
	if again, err := e2.Adopt(ctx, spec); err != nil || again != inst {
		t.Errorf("second Adopt = %v, %v; want the same instance", again, err)
	}
	if _, err := e2.Adopt(ctx, testSpec(t, "p-none", nil)); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Adopt of an unknown placement: %v, want ErrNotFound", err)
	}

	// The adopted instance reports a crash like a started one.
	get(inst, "/crash")
	waitDone(t, inst, 10*time.Second)
	if err := inst.Err(); err == nil || !strings.Contains(err.Error(), "status 3") {
		t.Errorf("Err() after a crash of the adopted instance = %v", err)
	}
	// Logs were reattached: the crash line came through the FIFOs the first agent made,
	// and so did what the container wrote while no agent read.
	if !l.Contains("stderr: hello: crashing on request") {
		t.Errorf("the adopted instance's output did not reach the logs:\n%s", l.String())
	}
	if !l.Contains("stdout: hello: GET /while-detached") {
		t.Errorf("output written while detached was lost:\n%s", l.String())
	}
	if err := e2.Stop(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRunningRemovesExited(t *testing.T) {
	ctx := context.Background()
	e1 := newExecutor(t, "node-d")
	spec := testSpec(t, "p-gone", nil)
	inst := startInstance(t, e1, spec)
	e1.Close()
	// The container crashes while no agent watches.
	get(inst, "/crash")
	e2 := newExecutor(t, "node-d")
	waitFor(t, 10*time.Second, "the container to exit", func() bool {
		c, err := e2.client.LoadContainer(e2.ctx(ctx), e2.containerID(spec.ID))
		if err != nil {
			return true
		}
		running, err := taskRunning(e2.ctx(ctx), c)
		return err == nil && !running
	})
	ids, err := e2.Running(ctx)
	if err != nil || slices.Contains(ids, spec.ID) {
		t.Fatalf("Running = %v, %v; want no %s", ids, err, spec.ID)
	}
	if _, err := e2.client.LoadContainer(e2.ctx(ctx), e2.containerID(spec.ID)); !errdefs.IsNotFound(err) {
		t.Errorf("exited container not removed: %v", err)
	}
}

func TestContainerID(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)
	seen := map[string]bool{}
	for _, c := range [][2]string{
		{"node-1", "p-1"},
		{"node-1", "p_1"},
		{"node/1", "p-1"},
		{"", ""},
		{"--", "..."},
		{"a very long node name that goes on and on", "0190f5a2-7b7c-7d1e-9a4b-0123456789ab-and-more-and-more"},
		{"ünï", "çødé"},
	} {
		id := containerID(c[0], c[1])
		if !valid.MatchString(id) || len(id) > 76 {
			t.Errorf("containerID(%q, %q) = %q: not a valid containerd id", c[0], c[1], id)
		}
		if seen[id] {
			t.Errorf("containerID(%q, %q) = %q twice", c[0], c[1], id)
		}
		seen[id] = true
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := newLineWriter("stdout", func(stream, line string) { got = append(got, stream+":"+line) })
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\r\nthree\n\nfour"))
	w.Flush()
	want := []string{"stdout:one", "stdout:two", "stdout:three", "stdout:", "stdout:four"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	got = nil
	w.Write([]byte(strings.Repeat("x", maxLine+10) + "\n"))
	if len(got) != 2 || len(got[0]) != len("stdout:")+maxLine {
		t.Errorf("a long line gave %d lines", len(got))
	}
	for i := range 20 {
		w.Write([]byte(strconv.Itoa(i) + "\n"))
	}
	if tail := w.Tail(); len(tail) != tailLines || tail[tailLines-1] != "19" {
		t.Errorf("Tail() = %q", tail)
	}
}

func TestNewWithoutContainerd(t *testing.T) {
	if _, err := New(Config{Socket: "/nonexistent/containerd.sock", NodeID: "n"}); err == nil {
		t.Error("New with a missing socket succeeded")
	}
	// A socket file nobody listens on, as a crashed containerd leaves it.
	dead := filepath.Join(t.TempDir(), "dead.sock")
	if err := os.WriteFile(dead, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := New(Config{Socket: dead, NodeID: "n"})
	if err == nil {
		t.Fatal("New with a dead socket succeeded")
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("New took %s to fail", d)
	}
	t.Logf("%v (in %s)", err, time.Since(start))
	if _, err := New(Config{Socket: dead}); err == nil || !strings.Contains(err.Error(), "node id") {
		t.Errorf("New without a node id: %v", err)
	}
}

// TestCloseDuringStartRemovesContainer: an agent shutting down (Close) while a start is
// under way abandons the start and waits for it to remove its container and network
// namespace, instead of cutting the connection that removal needs and leaving both behind.
func TestCloseDuringStartRemovesContainer(t *testing.T) {
	ctx := context.Background()
	e := newExecutor(t, "node-f")
	spec := testSpec(t, "p-cut", nil)
	spec.Container.Command = []string{"/hello", "-hang"} // never ready: Close cuts the start
	done := make(chan error, 1)
	go func() {
		_, err := e.Start(ctx, spec)
		done <- err
	}()
	var nsPath string
	waitFor(t, 20*time.Second, "the container to be created", func() bool {
		c, err := e.client.LoadContainer(e.ctx(ctx), e.containerID(spec.ID))
		if err != nil {
			return false
		}
		info, err := c.Info(e.ctx(ctx), containerd.WithoutRefreshedMetadata)
		nsPath = info.Labels[LabelNetNS]
		return err == nil && nsPath != ""
	})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("Start succeeded though the executor closed during it")
	}
	// Checked before any other executor of the node starts (its New collects namespaces).
	client, err := containerd.New(testSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.LoadContainer(e.ctx(ctx), e.containerID(spec.ID)); !errdefs.IsNotFound(err) {
		t.Errorf("container left by a start cut short at Close: %v", err)
	}
	if _, err := os.Stat(nsPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("network namespace %s left by a start cut short at Close: %v", nsPath, err)
	}
	// A later start says why it cannot, rather than blaming the artifact.
	if _, err := e.Start(ctx, spec); err == nil || !strings.Contains(err.Error(), "executor is closed") {
		t.Fatalf("Start after Close: %v", err)
	}
}
