package container

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestZZAB(t *testing.T) {
	e := newExecutor(t, "node-ab")
	ctx := e.ctx(context.Background())
	spec := testSpec(t, "p-ab", nil)
	if _, err := e.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	e.Stop(ctx, spec.ID)
	img, _ := e.client.GetImage(ctx, testImage)
	hc := &http.Client{Transport: &http.Transport{}}
	strip := func(dest ...string) oci.SpecOpts {
		return func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
			s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return slices.Contains(dest, m.Destination) })
			return nil
		}
	}
	variants := map[string]func(port int) []oci.SpecOpts{
		"full":       func(p int) []oci.SpecOpts { o, _ := e.specOpts(spec, img, p); return o },
		"no-cgmount": func(p int) []oci.SpecOpts { o, _ := e.specOpts(spec, img, p); return append(o, strip("/sys/fs/cgroup")) },
		"no-binds":   func(p int) []oci.SpecOpts { o, _ := e.specOpts(spec, img, p); return append(o, strip("/etc/hosts", "/etc/resolv.conf")) },
		"no-secc": func(p int) []oci.SpecOpts {
			o, _ := e.specOpts(spec, img, p)
			return append(o, func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error { s.Linux.Seccomp = nil; return nil })
		},
		"no-mem": func(p int) []oci.SpecOpts {
			o, _ := e.specOpts(spec, img, p)
			return append(o, func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error { s.Linux.Resources.Memory = nil; return nil })
		},
		"no-nnp": func(p int) []oci.SpecOpts {
			o, _ := e.specOpts(spec, img, p)
			return append(o, func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error { s.Process.NoNewPrivileges = false; return nil })
		},
		"no-app": func(p int) []oci.SpecOpts { o, _ := e.specOpts(spec, img, p); return append(o, strip("/app")) },
		"no-allm": func(p int) []oci.SpecOpts { o, _ := e.specOpts(spec, img, p); return append(o, strip("/app", "/sys/fs/cgroup", "/etc/hosts", "/etc/resolv.conf")) },
		"raw": func(p int) []oci.SpecOpts {
			return []oci.SpecOpts{oci.WithImageConfig(img), oci.WithEnv([]string{"PORT=" + strconv.Itoa(p)}), oci.WithHostNamespace(specs.NetworkNamespace)}
		},
	}
	names := []string{"full", "no-cgmount", "raw"}
	tot := map[string][]time.Duration{}
	const N = 60
	for i := range N {
		for k := range names {
			name := names[(k+i)%len(names)]
			id := fmt.Sprintf("ab-%d-%d", i, k)
			port, _ := e.allocPort(id)
			opts := variants[name](port)
			t0 := time.Now()
			c, err := e.client.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithSnapshotter(e.snapshotter), containerd.WithNewSnapshot(id, img), containerd.WithNewSpec(opts...))
			if err != nil {
				t.Fatal(err)
			}
			task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, io.Discard, io.Discard), cio.WithFIFODir(e.fifoDir)))
			if err != nil {
				t.Fatal(err)
			}
			ex, _ := task.Wait(ctx)
			task.Start(ctx)
			for {
				resp, err := hc.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
				if err == nil {
					resp.Body.Close()
					break
				}
				time.Sleep(readyPoll)
			}
			tot[name] = append(tot[name], time.Since(t0))
			task.Kill(ctx, syscall.SIGKILL)
			<-ex
			task.Delete(ctx)
			c.Delete(ctx, containerd.WithSnapshotCleanup)
		}
	}
	for _, n := range names {
		d := tot[n]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		t.Logf("%-10s mean %v median %v", n, sum/N, d[N/2])
	}
}
