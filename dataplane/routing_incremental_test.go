package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/logring"
	"github.com/velocity9/v9/proxy"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// The incremental rebuild derives the same routes as a rebuild from scratch after every
// write of a random history: components created, paused, deleted and re-created under
// their names; deployments activated, failed, put in and out of canary; placements put,
// observed running, lost and deleted; nodes registered and marked down.
func TestRoutingIncrementalMatchesFullRebuild(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { incrementalHistory(t, seed, 300) })
	}
}

func incrementalHistory(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	st := fsm.NewStore()
	newDP := func() *DataPlane {
		arts, err := OpenArtifacts(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		h := &harness{t: t, store: st}
		dp, err := New(context.Background(), Config{NodeID: self, Store: st, Cluster: h, Artifacts: arts, Logs: logring.New(10), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(dp.Close)
		return dp
	}
	inc, full := newDP(), newDP()
	var idx uint64
	apply := func(cmd *statev1.Command) {
		idx++
		cmd.Time = timestamppb.Now()
		_ = st.Apply(idx, cmd) // a random history holds rejected commands too: they change nothing
	}
	for _, n := range []string{self, "n2", "n3"} {
		apply(registerNode(n, n+":8080"))
	}
	names := []string{"a", "b", "c", "d"}
	nodes := []string{self, "n2", "n3"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	seq, remotes := 0, 0
	defer func() {
		t.Logf("targets with remotes seen: %d", remotes)
	}()
	comps := map[string]string{} // name -> current id
	deps := map[string][]string{}
	var places []string
	for step := 0; step < steps; step++ {
		seq++
		switch k := rng.IntN(12); {
		case k == 0 || len(comps) == 0:
			name := pick(names)
			id := fmt.Sprintf("c%d", seq)
			cmd := createComponent(id, name, rng.IntN(5) == 0)
			if rng.IntN(3) == 0 {
				cmd.GetCreateComponent().Component.Runtime = statev1.Runtime_RUNTIME_CONTAINER
				cmd.GetCreateComponent().Component.Spec.Wasm = nil
				cmd.GetCreateComponent().Component.Spec.Container = &statev1.ContainerSpec{Image: "x"}
			}
			apply(cmd)
			if c, err := st.Component(name); err == nil && c.Id == id {
				comps[name] = id
			}
		case k == 1:
			name := pick(names)
			apply(&statev1.Command{Op: &statev1.Command_DeleteComponent{DeleteComponent: &statev1.DeleteComponent{Name: name}}})
			delete(comps, name)
		case k == 2:
			d := []statev1.DesiredState{statev1.DesiredState_DESIRED_STATE_PAUSED, statev1.DesiredState_DESIRED_STATE_RUNNING}[rng.IntN(2)]
			apply(&statev1.Command{Op: &statev1.Command_SetComponentDesired{SetComponentDesired: &statev1.SetComponentDesired{Name: pick(names), Desired: d}}})
		case k == 3:
			for _, id := range comps {
				did := fmt.Sprintf("d%d", seq)
				apply(createDeployment(did, id, "sha256:x"))
				deps[id] = append(deps[id], did)
				break
			}
		case k == 4:
			for _, id := range comps {
				if ds := deps[id]; len(ds) > 0 {
					apply(activate(id, pick(ds)))
				}
				break
			}
		case k == 5:
			for _, id := range comps {
				if ds := deps[id]; len(ds) > 0 {
					s := []statev1.DeploymentStatus{statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY}[rng.IntN(2)]
					apply(&statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{Id: pick(ds), Status: s}}})
				}
				break
			}
		case k == 6:
			for _, id := range comps {
				if ds := deps[id]; len(ds) > 0 {
					if rng.IntN(2) == 0 {
						apply(&statev1.Command{Op: &statev1.Command_StartCanary{StartCanary: &statev1.StartCanary{DeploymentId: pick(ds)}}})
					} else {
						apply(&statev1.Command{Op: &statev1.Command_EndCanary{EndCanary: &statev1.EndCanary{DeploymentId: pick(ds)}}})
					}
				}
				break
			}
		case k <= 8:
			for _, id := range comps {
				if ds := deps[id]; len(ds) > 0 {
					pid := fmt.Sprintf("p%d", seq)
					desired := []statev1.PlacementDesired{statev1.PlacementDesired_PLACEMENT_DESIRED_RUN, statev1.PlacementDesired_PLACEMENT_DESIRED_STOP}[rng.IntN(4)/3]
					apply(putPlacement(pid, id, pick(ds), pick(nodes), desired))
					places = append(places, pid)
				}
				break
			}
		case k == 9:
			if ps := st.Placements(""); len(ps) > 0 {
				o := []statev1.PlacementObserved{statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING, statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED, statev1.PlacementObserved_PLACEMENT_OBSERVED_LOST}[rng.IntN(5)/3*(1+rng.IntN(2))]
				apply(setObserved(ps[rng.IntN(len(ps))].Id, o))
			}
		case k == 10 && len(places) > 0:
			apply(deletePlacements(pick(places)))
		case k == 11:
			s := []statev1.NodeStatus{statev1.NodeStatus_NODE_STATUS_DOWN, statev1.NodeStatus_NODE_STATUS_READY}[min(rng.IntN(4), 1)]
			apply(&statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{Id: pick(nodes[1:]), Status: s}}})
		}
		if rng.IntN(3) == 0 && step != steps-1 {
			continue // several writes between two rebuilds, as under a burst
		}
		inc.router.rebuild()
		full.router.mu.Lock()
		full.router.base = nil // from scratch
		full.router.mu.Unlock()
		full.router.rebuild()
		want, got := full.router.snap.Load(), inc.router.snap.Load()
		wantTargets, gotTargets := allTargets(want), allTargets(got)
		if !slices.Equal(sortedKeys(gotTargets), sortedKeys(wantTargets)) {
			t.Fatalf("step %d: incremental routes %v, from scratch %v", step, sortedKeys(gotTargets), sortedKeys(wantTargets))
		}
		for _, w := range wantTargets {
			if len(w.Remote) > 0 {
				remotes++
			}
		}
		for name, w := range wantTargets {
			if g := gotTargets[name]; !sameTarget(*g, *w) {
				t.Fatalf("step %d: %s: incremental %+v, from scratch %+v", step, name, *g, *w)
			}
			if g := inc.router.Lookup(name); !sameTarget(g, *w) {
				t.Fatalf("step %d: %s: Lookup %+v, from scratch %+v", step, name, g, *w)
			}
		}
		if !slices.Equal(sortedKeys(got.onDemand), sortedKeys(want.onDemand)) {
			t.Fatalf("step %d: on-demand %v, from scratch %v", step, sortedKeys(got.onDemand), sortedKeys(want.onDemand))
		}
		for name, w := range want.onDemand {
			if g := got.onDemand[name]; g.id != w.id || !slices.Equal(g.candidates, w.candidates) {
				t.Fatalf("step %d: on-demand %s: %+v, from scratch %+v", step, name, *g, *w)
			}
		}
	}
}

// allTargets is every target of a snapshot, its recent ones over the others.
func allTargets(s *snapshot) map[string]*proxy.Target {
	out := maps.Clone(s.targets)
	for name, tg := range s.recent {
		if tg != nil {
			out[name] = tg
		} else {
			delete(out, name)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// sameTarget compares what routing decides (handlers only by presence: the on-demand
// handlers of two data planes are different values).
func sameTarget(a, b proxy.Target) bool {
	canary := func(c *proxy.Canary) string {
		if c == nil {
			return ""
		}
		return fmt.Sprint(c.Percent, len(c.Local), c.Remote)
	}
	return a.Found == b.Found && a.Paused == b.Paused && len(a.Local) == len(b.Local) && a.InProcess == b.InProcess &&
		slices.Equal(a.Remote, b.Remote) && (a.OnDemand == nil) == (b.OnDemand == nil) && canary(a.Canary) == canary(b.Canary) &&
		a.Unavailable == b.Unavailable && a.MaxBody == b.MaxBody && a.Concurrency == b.Concurrency
}

// Rebuilds that each change a few routes publish them as recent targets over a shared map,
// folded into a new map once they pass an eighth of it: Lookup answers for every component
// created and none deleted, whichever side of a fold it is on, and the recent targets stay
// bounded.
func TestRoutingRecentTargetsFold(t *testing.T) {
	st := fsm.NewStore()
	arts, err := OpenArtifacts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dp, err := New(context.Background(), Config{NodeID: self, Store: st, Cluster: &harness{t: t, store: st}, Artifacts: arts, Logs: logring.New(10), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dp.Close)
	var idx uint64
	apply := func(cmd *statev1.Command) {
		idx++
		if err := st.Apply(idx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	apply(registerNode(self, "127.0.0.1:1"))
	dp.router.rebuild()
	folds, live := 0, map[string]bool{}
	for i := range 600 {
		name := fmt.Sprintf("c%03d", i)
		apply(createComponent("id-"+name, name, false))
		live[name] = true
		if i%7 == 3 {
			gone := fmt.Sprintf("c%03d", i-3)
			apply(&statev1.Command{Op: &statev1.Command_DeleteComponent{DeleteComponent: &statev1.DeleteComponent{Name: gone}}})
			delete(live, gone)
		}
		before := dp.router.snap.Load()
		dp.router.rebuild()
		s := dp.router.snap.Load()
		if len(s.recent) == 0 && len(before.recent) > 0 {
			folds++
		}
		if len(s.recent) > max(recentMin, len(s.targets)/recentShare) {
			t.Fatalf("step %d: %d recent targets over %d", i, len(s.recent), len(s.targets))
		}
		for j := 0; j <= i; j++ {
			n := fmt.Sprintf("c%03d", j)
			if got := dp.router.Lookup(n).Found; got != live[n] {
				t.Fatalf("step %d: Lookup(%s).Found = %v, want %v", i, n, got, live[n])
			}
		}
	}
	if folds < 3 {
		t.Fatalf("%d folds in 600 rebuilds", folds)
	}
}
