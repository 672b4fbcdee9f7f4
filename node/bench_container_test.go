package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/runtime/container"
)

// BenchmarkContainerColdStart (P3) compares a container component's cold start through v9,
// from the API call that resumes the paused component (the placement is committed right
// after) to the first 200 through the node's proxy, with raw containerd client calls for the
// same image on the same containerd: create a container and a task, start it, poll its port
// until it answers 200. The image is imported beforehand for both; rounds alternate. Run
// with -benchtime=1x.
func BenchmarkContainerColdStart(b *testing.B) {
	needContainerd(b)
	c := NewTestClusterOpts(b, 1, containerOptions())
	quiet(c)
	n := c.Nodes[0]
	ctx := context.Background()
	if _, err := upload(ctx, n, containerDir(b, "", "bench")); err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	untilOK := func(url string, since time.Time) time.Duration {
		for {
			if resp, err := hc.Get(url); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return time.Since(since)
				}
			}
			if time.Since(since) > 60*time.Second {
				b.Fatalf("%s never answered 200", url)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	proxyURL := "http://" + n.ProxyAddr() + "/hello/"
	untilOK(proxyURL, time.Now())

	ex := n.dp.Executor(statev1.Runtime_RUNTIME_CONTAINER).(*container.Executor)
	client, err := containerd.New(testContainerd, containerd.WithDefaultNamespace(container.DefaultNamespace))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	img, err := client.GetImage(ctx, "v9.local/hello-ctr:test")
	if err != nil {
		b.Fatal(err)
	}
	cli := componentClient(n)
	raw := func(i int) time.Duration {
		id := fmt.Sprintf("p3-raw-%d", i)
		start := time.Now()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ctr, err := client.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithSnapshotter(ex.Snapshotter()),
			containerd.WithNewSnapshot(id, img), containerd.WithNewSpec(oci.WithImageConfig(img),
				oci.WithEnv([]string{fmt.Sprintf("PORT=%d", port)}), oci.WithHostNamespace(specs.NetworkNamespace)))
		if err != nil {
			b.Fatal(err)
		}
		task, err := ctr.NewTask(ctx, cio.NullIO)
		if err != nil {
			b.Fatal(err)
		}
		exited, err := task.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := task.Start(ctx); err != nil {
			b.Fatal(err)
		}
		d := untilOK(fmt.Sprintf("http://127.0.0.1:%d/", port), start)
		task.Kill(ctx, syscall.SIGKILL)
		<-exited
		task.Delete(ctx)
		ctr.Delete(ctx, containerd.WithSnapshotCleanup)
		return d
	}
	v9 := func() time.Duration {
		if _, err := cli.Pause(ctx, connect.NewRequest(&componentv1.PauseRequest{Name: "hello"})); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); n.dp.Running("hello") > 0 || len(n.Store().Placements("")) > 0; {
			if time.Now().After(deadline) {
				b.Fatal("pause did not stop the instance")
			}
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Now()
		if _, err := cli.Resume(ctx, connect.NewRequest(&componentv1.ResumeRequest{Name: "hello"})); err != nil {
			b.Fatal(err)
		}
		return untilOK(proxyURL, start)
	}
	var v9s, raws, ratios []float64
	for i := range 5 {
		r := raw(i).Seconds() * 1000
		v := v9().Seconds() * 1000
		v9s, raws, ratios = append(v9s, v), append(raws, r), append(ratios, v/r)
	}
	b.ReportMetric(median(v9s), "v9-ms")
	b.ReportMetric(median(raws), "raw-ms")
	b.ReportMetric(median(ratios), "v9/raw")
}
