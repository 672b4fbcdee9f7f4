package node

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
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
	"github.com/velocity9/v9/sched"
)

// BenchmarkContainerColdStart (P3) compares a container component's cold start through v9,
// from the API call that resumes the paused component (the placement is committed right
// after) to the first 200 through the node's proxy, with raw containerd client calls for the
// same image on the same containerd with the same OCI spec (v9's, read from its container,
// on the host's network): create a container and a task, start it, poll its port until it
// answers 200. The image is imported beforehand for both; rounds alternate, each timed start
// after the machine has been left idle for coldIdle. Run with -benchtime=1x;
// -bench.coldold runs the earlier harness.
func BenchmarkContainerColdStart(b *testing.B) {
	r := newColdStartRig(b, "", sched.Policy{})
	n, ctx, proxyURL, untilOK := r.n, context.Background(), r.proxyURL(), r.untilOK
	cli := componentClient(n)
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
		r.settle()
		start := time.Now()
		if _, err := cli.Resume(ctx, connect.NewRequest(&componentv1.ResumeRequest{Name: "hello"})); err != nil {
			b.Fatal(err)
		}
		return untilOK(proxyURL, start)
	}
	r.compare(v9)
}

// BenchmarkContainerFromZero (P3 through the proxy) compares the first request to a
// container component at zero replicas (scale.min 0), held by the proxy while an on-demand
// instance starts, from the request sent to its 200, with the raw containerd baseline of
// BenchmarkContainerColdStart, rounds alternating. Between rounds a pause stops the
// on-demand instance, and a resume brings the component back at zero; the autoscaler is
// held off (hour-long cool-downs), so nothing else starts an instance. Run with
// -benchtime=1x.
func BenchmarkContainerFromZero(b *testing.B) {
	r := newColdStartRig(b, "[scale]\nmin = 0\nmax = 1\n", sched.Policy{UpCooldown: time.Hour, DownCooldown: time.Hour})
	n, ctx := r.n, context.Background()
	cli := componentClient(n)
	if _, err := cli.Scale(ctx, connect.NewRequest(&componentv1.ScaleRequest{Name: "hello", Replicas: 0})); err != nil {
		b.Fatal(err)
	}
	held := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	v9 := func() time.Duration {
		if _, err := cli.Pause(ctx, connect.NewRequest(&componentv1.PauseRequest{Name: "hello"})); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			ids, err := runningContainers(n)
			if err == nil && len(ids) == 0 && len(n.Store().Placements("")) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("pause did not stop every instance: %v %v", ids, err)
			}
		}
		if _, err := cli.Resume(ctx, connect.NewRequest(&componentv1.ResumeRequest{Name: "hello"})); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if t := n.dp.Router().Lookup("hello"); !t.Paused && t.OnDemand != nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("resumed component not routed on demand")
			}
		}
		r.settle()
		start := time.Now()
		resp, err := held.Get(r.proxyURL())
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("first request at zero: %d %q", resp.StatusCode, body)
		}
		return time.Since(start)
	}
	r.compare(v9)
}

// coldStartRig is what both cold-start benchmarks share: a one-node cluster with the
// container component hello uploaded (extra: its manifest lines) and serving, an HTTP
// poller, and the raw containerd baseline.
type coldStartRig struct {
	b      *testing.B
	n      *Node
	client *containerd.Client
	img    containerd.Image
	ex     *container.Executor
	hc     *http.Client
	spec   *oci.Spec // the OCI spec of v9's container, for the raw baseline
}

var benchColdOld = flag.Bool("bench.coldold", false, "P3 benchmarks: the earlier harness (the raw baseline with "+
	"containerd's default spec, v9 timed from a resume sent as soon as the pause is done)")

// coldIdle is how long the machine is left idle before each timed start. A resume comes
// when the component has been paused a while, not within milliseconds of the pause: the
// pause's own aftermath is not part of a cold start — the scheduler's pacing after the pass
// that removed the placement (leader.schedulePause), containerd collecting the removed
// container and snapshot, the network namespace pool refilling after the last start.
const coldIdle = 500 * time.Millisecond

// settle leaves the machine idle before a timed start (none with -bench.coldold).
func (r *coldStartRig) settle() {
	if !*benchColdOld {
		time.Sleep(coldIdle)
	}
}

func newColdStartRig(b *testing.B, extra string, policy sched.Policy) *coldStartRig {
	needContainerd(b)
	opts := containerOptions()
	opts.Autoscale = policy
	c := NewTestClusterOpts(b, 1, opts)
	quiet(c)
	n := c.Nodes[0]
	ctx := context.Background()
	if _, err := upload(ctx, n, containerDir(b, extra, "bench")); err != nil {
		b.Fatal(err)
	}
	r := &coldStartRig{b: b, n: n, hc: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}}
	r.untilOK(r.proxyURL(), time.Now())
	r.ex = n.dp.Executor(statev1.Runtime_RUNTIME_CONTAINER).(*container.Executor)
	client, err := containerd.New(testContainerd, containerd.WithDefaultNamespace(container.DefaultNamespace))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	r.client = client
	if r.img, err = client.GetImage(ctx, "v9.local/hello-ctr:test"); err != nil {
		b.Fatal(err)
	}
	ctrs, err := client.Containers(ctx, `labels."`+container.LabelComponent+`"==hello`)
	if err != nil || len(ctrs) == 0 {
		b.Fatalf("v9's container of hello: %d, %v", len(ctrs), err)
	}
	if r.spec, err = ctrs[0].Spec(ctx); err != nil {
		b.Fatal(err)
	}
	return r
}

func (r *coldStartRig) proxyURL() string { return "http://" + r.n.ProxyAddr() + "/hello/" }

// untilOK polls url until it answers 200 and returns the time since since.
func (r *coldStartRig) untilOK(url string, since time.Time) time.Duration {
	for {
		if resp, err := r.hc.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(since)
			}
		}
		if time.Since(since) > 60*time.Second {
			r.b.Fatalf("%s never answered 200", url)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// compare alternates five rounds of the raw baseline and of v9 and reports the medians.
// v9 keeps a standby container at rest (runtime/container/standby.go), so beside the raw
// baseline (v9/raw, the P3 figure) it reports raw containerd doing the same: the
// container and its task created ahead, timed from the task's start (v9/raw-prepared).
func (r *coldStartRig) compare(v9 func() time.Duration) {
	var v9s, raws, preps, ratios, prepRatios []float64
	for i := range 5 {
		w := r.raw(i, false).Seconds() * 1000
		p := r.raw(i, true).Seconds() * 1000
		v := v9().Seconds() * 1000
		v9s, raws, preps = append(v9s, v), append(raws, w), append(preps, p)
		ratios, prepRatios = append(ratios, v/w), append(prepRatios, v/p)
	}
	r.b.ReportMetric(median(v9s), "v9-ms")
	r.b.ReportMetric(median(raws), "raw-ms")
	r.b.ReportMetric(median(ratios), "v9/raw")
	r.b.ReportMetric(median(preps), "raw-prepared-ms")
	r.b.ReportMetric(median(prepRatios), "v9/raw-prepared")
}

// raw is the baseline: raw containerd client calls for the same image on the same
// containerd with v9's OCI spec (create a container and a task, start it, poll its port
// until it answers 200), then the container removed. prepared creates the container and
// the task before the idle time and times only the start.
func (r *coldStartRig) raw(i int, prepared bool) time.Duration {
	b, ctx, client, img, ex := r.b, context.Background(), r.client, r.img, r.ex
	id := fmt.Sprintf("p3-raw-%d-%d-%t", os.Getpid(), i, prepared)
	if !prepared {
		r.settle()
	}
	start := time.Now()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	spec := containerd.WithNewSpec(oci.WithImageConfig(img),
		oci.WithEnv([]string{fmt.Sprintf("PORT=%d", port)}), oci.WithHostNamespace(specs.NetworkNamespace))
	if !*benchColdOld {
		spec = containerd.WithSpec(sameSpec(b, r.spec, id, port))
	}
	ctr, err := client.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithSnapshotter(ex.Snapshotter()),
		containerd.WithNewSnapshot(id, img), spec)
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
	if prepared {
		r.settle()
		start = time.Now()
	}
	if err := task.Start(ctx); err != nil {
		b.Fatal(err)
	}
	d := r.untilOK(fmt.Sprintf("http://127.0.0.1:%d/", port), start)
	task.Kill(ctx, syscall.SIGKILL)
	<-exited
	task.Delete(ctx)
	ctr.Delete(ctx, containerd.WithSnapshotCleanup)
	return d
}

// sameSpec is v9's OCI spec for raw container id: the same but for the network (the host's,
// the container listening at port; v9 gives its containers a namespace connected ahead of
// time, from a pool) and the cgroup (its own).
func sameSpec(b *testing.B, v9 *oci.Spec, id string, port int) *oci.Spec {
	data, err := json.Marshal(v9)
	if err != nil {
		b.Fatal(err)
	}
	var s oci.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		b.Fatal(err)
	}
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace })
	for i, e := range s.Process.Env {
		if strings.HasPrefix(e, "PORT=") {
			s.Process.Env[i] = fmt.Sprintf("PORT=%d", port)
		}
	}
	s.Linux.CgroupsPath = "/" + container.DefaultNamespace + "/" + id
	return &s
}
