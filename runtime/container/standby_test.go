package container

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"

	"github.com/velocity9/v9/runtime/runtimetest"
)

// waitStandby waits until e keeps a standby container for component and returns it.
func waitStandby(t *testing.T, e *Executor, component string) *standby {
	t.Helper()
	var sb *standby
	waitFor(t, 30*time.Second, "a standby container of "+component, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		sb = e.standbys[component]
		return sb != nil
	})
	return sb
}

// waitGone waits until container cid no longer exists.
func waitGone(t *testing.T, e *Executor, cid, why string) {
	t.Helper()
	waitFor(t, 30*time.Second, why, func() bool {
		_, err := e.client.LoadContainer(e.ctx(context.Background()), cid)
		return errdefs.IsNotFound(err)
	})
}

// TestStandby: a stopped container leaves a standby (container and task created, nothing
// started, invisible to Running); the next start of the same spec claims it (relabelled,
// its logs to the new placement, adoptable by a new agent); a start of another spec, a
// prune, Close and a new executor remove standbys.
func TestStandby(t *testing.T) {
	ctx := context.Background()
	e := newExecutor(t, "node-s")
	probe := newExecutor(t, "node-probe") // looks at node-s's containers, whatever they do
	spec := testSpec(t, "p-sb-1", nil)
	startInstance(t, e, spec)
	if err := e.Stop(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	sb := waitStandby(t, e, spec.Component)
	cid := sb.inst.cid
	c, err := e.client.LoadContainer(e.ctx(ctx), cid)
	if err != nil {
		t.Fatal(err)
	}
	labels, err := c.Labels(e.ctx(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if labels[LabelStandby] != "true" || labels[LabelPlacement] != "" || labels[LabelNode] != "node-s" {
		t.Errorf("standby labels = %v", labels)
	}
	task, err := c.Task(e.ctx(ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := task.Status(e.ctx(ctx)); err != nil || st.Status != containerd.Created {
		t.Errorf("standby task status = %v, %v; want created (not started)", st.Status, err)
	}
	if ids, err := e.Running(ctx); err != nil || len(ids) != 0 {
		t.Errorf("Running with a standby = %v, %v; want nothing", ids, err)
	}

	// The next start of the same spec claims it.
	var l runtimetest.Logs
	spec2 := testSpec(t, "p-sb-2", &l)
	inst, err := e.Start(ctx, spec2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(ctx, spec2.ID) })
	if got := inst.(*instance).cid; got != cid {
		t.Fatalf("Start made container %s; want the standby %s", got, cid)
	}
	if code, body := get(inst, "/"); code != http.StatusOK || !strings.Contains(body, "hello from container hi there") {
		t.Fatalf("GET / through the claimed standby = %d %q", code, body)
	}
	waitFor(t, 5*time.Second, "the claimed container's output in the new placement's logs", func() bool { return l.Contains("stdout: hello: listening on") })
	if labels, err = c.Labels(e.ctx(ctx)); err != nil || labels[LabelPlacement] != spec2.ID || labels[LabelStandby] != "" || labels[LabelDeployment] != "d-1" {
		t.Errorf("claimed container's labels = %v, %v", labels, err)
	}
	if ids, err := e.Running(ctx); err != nil || len(ids) != 1 || ids[0] != spec2.ID {
		t.Errorf("Running = %v, %v; want [%s]", ids, err, spec2.ID)
	}

	// A new agent finds it by its label and adopts it; Stop removes it and leaves a
	// new standby.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := newExecutor(t, "node-s")
	adopted, err := e2.Adopt(ctx, spec2)
	if err != nil {
		t.Fatal(err)
	}
	if got := adopted.(*instance).task.Pid(); got != task.Pid() {
		t.Errorf("adopted pid %d, want %d", got, task.Pid())
	}
	if err := e2.Stop(ctx, spec2.ID); err != nil {
		t.Fatal(err)
	}
	waitGone(t, e2, cid, "the claimed container removed by Stop")
	sb2 := waitStandby(t, e2, spec.Component)

	// A start of another spec removes the standby and creates its own container.
	spec3 := testSpec(t, "p-sb-3", nil)
	spec3.Env["GREETING"] = "someone else"
	spec3.SpecIndex = 7 // the variable changed the component's spec_index
	inst3, err := e2.Start(ctx, spec3)
	if err != nil {
		t.Fatal(err)
	}
	if got := inst3.(*instance).cid; got != e2.containerID(spec3.ID) {
		t.Errorf("Start of another spec used container %s", got)
	}
	if _, body := get(inst3, "/"); !strings.Contains(body, "someone else") {
		t.Errorf("GET / = %q; want the new greeting", body)
	}
	waitGone(t, e2, sb2.inst.cid, "the standby of another spec removed")

	// PruneStandby removes what keep does not want.
	if err := e2.Stop(ctx, spec3.ID); err != nil {
		t.Fatal(err)
	}
	sb3 := waitStandby(t, e2, spec.Component)
	var asked []string
	e2.PruneStandby(ctx, func(component, deployment string, specIndex uint64) bool {
		asked = append(asked, fmt.Sprintf("%s/%s/%d", component, deployment, specIndex))
		return true
	})
	if len(asked) != 1 || asked[0] != "hello-ctr/d-1/7" {
		t.Errorf("PruneStandby asked %v", asked)
	}
	e2.PruneStandby(ctx, func(string, string, uint64) bool { return false })
	waitGone(t, e2, sb3.inst.cid, "the pruned standby removed")
	// Until the next prune, keep also says whether a stop leaves a standby.
	inst35 := startInstance(t, e2, testSpec(t, "p-sb-35", nil))
	if err := e2.Stop(ctx, inst35.ID()); err != nil {
		t.Fatal(err)
	}
	e2.mu.Lock()
	n := len(e2.standbys) + len(e2.preparing)
	e2.mu.Unlock()
	if n != 0 {
		t.Errorf("a stop left a standby that keep does not want")
	}
	e2.PruneStandby(ctx, func(string, string, uint64) bool { return true })

	// Close removes the standbys; a new executor removes those a dead agent left.
	inst4 := startInstance(t, e2, testSpec(t, "p-sb-4", nil))
	if err := e2.Stop(ctx, inst4.ID()); err != nil {
		t.Fatal(err)
	}
	sb4 := waitStandby(t, e2, spec.Component)
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, probe, sb4.inst.cid, "the standby removed by Close")

	e3 := newExecutor(t, "node-s")
	inst5 := startInstance(t, e3, testSpec(t, "p-sb-5", nil))
	if err := e3.Stop(ctx, inst5.ID()); err != nil {
		t.Fatal(err)
	}
	sb5 := waitStandby(t, e3, spec.Component)
	e3.mu.Lock()
	delete(e3.standbys, spec.Component) // the agent dies without a word
	e3.mu.Unlock()
	if err := e3.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := probe.client.LoadContainer(probe.ctx(ctx), sb5.inst.cid); err != nil {
		t.Fatalf("the forgotten standby: %v", err)
	}
	e4 := newExecutor(t, "node-s")
	waitGone(t, probe, sb5.inst.cid, "the standby a dead agent left, removed by New")

	// A standby whose task died is not claimed: the start makes a container of its own.
	inst6 := startInstance(t, e4, testSpec(t, "p-sb-6", nil))
	if err := e4.Stop(ctx, inst6.ID()); err != nil {
		t.Fatal(err)
	}
	sb6 := waitStandby(t, e4, spec.Component)
	if err := sb6.inst.task.Kill(e4.ctx(ctx), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDone(t, sb6.inst, 10*time.Second)
	inst7 := startInstance(t, e4, testSpec(t, "p-sb-7", nil))
	if got := inst7.(*instance).cid; got != e4.containerID("p-sb-7") {
		t.Errorf("Start used container %s after the standby died", got)
	}
	if code, _ := get(inst7, "/"); code != http.StatusOK {
		t.Errorf("GET / after the standby died = %d", code)
	}
	waitGone(t, probe, sb6.inst.cid, "the dead standby removed")
}
