package container

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/velocity9/v9/runtime"
)

// BenchmarkColdStart is P3 of the data-plane issue at the executor's level: Start → first
// 200 through Instance.ServeHTTP, against raw containerd client calls for the same image
// (create a container and a task, wait, start, poll the port until it answers 200).
// Four contenders run interleaved, in rotating order, with the image imported and
// unpacked beforehand:
//
//   - exec: the executor, the container in its own network namespace on v9's bridge,
//     taken from the executor's pool of connected namespaces (refilled between runs).
//   - raw: the least containerd needs: the image config, PORT, the host network.
//   - raw-spec: raw calls with the executor's OCI spec (seccomp, no new privileges,
//     memory limit, mounts) and stdio FIFOs, but the host network: what the component
//     contract costs runc, without v9's own work.
//   - raw-netns: raw, in a network namespace of its own attached through CNI: what the
//     namespace alone costs.
//
// Reported per cold start: exec-ms, raw-ms, raw-spec-ms, raw-netns-ms, and the ratios
// exec/raw (the P3, goal < 1.3 with the namespace) and exec/raw-spec.
func BenchmarkColdStart(b *testing.B) {
	e := newExecutor(b, "node-bench")
	ctx := e.ctx(context.Background())
	spec := testSpec(b, "p-bench", nil)

	// Import and unpack the image once, outside the measurement.
	if _, err := e.Start(ctx, spec); err != nil {
		b.Fatal(err)
	}
	if err := e.Stop(ctx, spec.ID); err != nil {
		b.Fatal(err)
	}
	e.net.waitRefill()
	img, err := e.client.GetImage(ctx, testImage)
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
	hostPort := func() string {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}
	portOf := func(addr string) int { return int(netip.MustParseAddrPort(addr).Port()) }
	minimal := func() ([]oci.SpecOpts, cio.Creator, string, func()) {
		addr := hostPort()
		return []oci.SpecOpts{
			oci.WithImageConfig(img),
			oci.WithEnv([]string{"PORT=" + strconv.Itoa(portOf(addr))}),
			oci.WithHostNamespace(specs.NetworkNamespace),
		}, cio.NullIO, addr, func() {}
	}
	sameSpec := func() ([]oci.SpecOpts, cio.Creator, string, func()) {
		addr := hostPort()
		opts, err := e.specOpts(spec, img, portOf(addr), "")
		if err != nil {
			b.Fatal(err)
		}
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
		return opts, cio.NewCreator(cio.WithStreams(nil, io.Discard, io.Discard), cio.WithFIFODir(e.fifoDir)), addr, func() {}
	}
	withNetNS := func() ([]oci.SpecOpts, cio.Creator, string, func()) {
		nsPath, ip, err := e.net.attach(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return []oci.SpecOpts{
				oci.WithImageConfig(img),
				oci.WithEnv([]string{"PORT=" + strconv.Itoa(Port)}),
				oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: nsPath}),
			}, cio.NullIO, netip.AddrPortFrom(ip, Port).String(), func() {
				if err := e.net.detach(ctx, nsPath); err != nil {
					b.Fatal(err)
				}
			}
	}

	contenders := []func(n int) time.Duration{
		func(int) time.Duration { return coldStartExecutor(b, e, spec) },
		func(n int) time.Duration { return coldStartRaw(b, e, img, client, "raw-"+strconv.Itoa(n), minimal) },
		func(n int) time.Duration {
			return coldStartRaw(b, e, img, client, "raw-spec-"+strconv.Itoa(n), sameSpec)
		},
		func(n int) time.Duration {
			return coldStartRaw(b, e, img, client, "raw-netns-"+strconv.Itoa(n), withNetNS)
		},
	}
	var total [4]time.Duration
	n := 0
	for b.Loop() {
		for k := range contenders {
			c := (k + n) % len(contenders)
			total[c] += contenders[c](n)
		}
		n++
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	b.ReportMetric(ms(total[0]), "exec-ms")
	b.ReportMetric(ms(total[1]), "raw-ms")
	b.ReportMetric(ms(total[2]), "raw-spec-ms")
	b.ReportMetric(ms(total[3]), "raw-netns-ms")
	b.ReportMetric(ms(total[0])/ms(total[1]), "ratio")
	b.ReportMetric(ms(total[0])/ms(total[2]), "ratio-spec")
}

func coldStartExecutor(b *testing.B, e *Executor, spec runtime.Spec) time.Duration {
	ctx := context.Background()
	start := time.Now()
	inst, err := e.Start(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	if code, body := get(inst, "/"); code != http.StatusOK {
		b.Fatalf("GET / = %d %q", code, body)
	}
	d := time.Since(start)
	b.StopTimer()
	if err := e.Stop(ctx, spec.ID); err != nil {
		b.Fatal(err)
	}
	// The namespace pool refills between starts, as it does on an agent between
	// placements; here it must not slow the next contender down.
	e.net.waitRefill()
	b.StartTimer()
	return d
}

func coldStartRaw(b *testing.B, e *Executor, img containerd.Image, client *http.Client, id string,
	setup func() ([]oci.SpecOpts, cio.Creator, string, func())) time.Duration {
	ctx := e.ctx(context.Background())
	start := time.Now()
	opts, creator, addr, cleanup := setup()
	c, err := e.client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithSnapshotter(e.snapshotter),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(opts...),
		e.withRuntime())
	if err != nil {
		b.Fatal(err)
	}
	task, err := c.NewTask(ctx, creator)
	if err != nil {
		b.Fatal(err)
	}
	exitC, err := task.Wait(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		b.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/", addr)
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 20*time.Second {
			b.Fatalf("raw container did not answer: %v", err)
		}
		time.Sleep(readyPoll)
	}
	d := time.Since(start)

	b.StopTimer()
	task.Kill(ctx, syscall.SIGKILL)
	<-exitC
	if _, err := task.Delete(ctx); err != nil {
		b.Fatal(err)
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		b.Fatal(err)
	}
	cleanup()
	b.StartTimer()
	return d
}
