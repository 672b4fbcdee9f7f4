//go:build !race

package jepsen

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/anishathalye/porcupine"

	"github.com/velocity9/v9/rpc/client"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

var (
	flagLong     = flag.Bool("jepsen.long", false, "run the long storm (make jepsen): 5 minutes unless -jepsen.duration says otherwise")
	flagDuration = flag.Duration("jepsen.duration", 0, "how long clients run and nodes are killed (default 40s, or 5m with -jepsen.long)")
	flagClients  = flag.Int("jepsen.clients", 6, "concurrent clients, spread over the nodes")
	flagKeys     = flag.Int("jepsen.keys", 4, "component names the clients share")
	flagSeed     = flag.Uint64("jepsen.seed", 0, "random seed (0: from the clock; the seed used is logged)")
	flagSnapshot = flag.Uint64("jepsen.snapshot-threshold", 1_000_000, "the agents' --raft-snapshot-threshold: by default no snapshot is taken during a short storm, so every restart replays the whole log and a restarted follower's FSM trails Raft for longest (0: the agent's default)")
	flagBin      = flag.String("jepsen.bin", "", "the v9 binary to run (default: built from this tree by the test)")
	flagOut      = flag.String("jepsen.out", "", "directory for agent logs and porcupine's HTML of failing histories (default: the test's artifact dir, kept with go test -artifacts)")
)

const (
	opTimeout    = 3 * time.Second // one client call
	checkTimeout = 2 * time.Minute // porcupine, per name
	killEvery    = 3 * time.Second // mean time between kills (2-4 s)
	maxDown      = 1500 * time.Millisecond
)

// envKey is the env var of a component's spec that holds the value clients write.
const envKey = "JEPSEN"

// TestNoRaceJepsen runs three real `v9 agent` processes, has clients on every node create,
// update, read (consistent) and delete components on a few names while a nemesis kills a
// node with SIGKILL every few seconds (the leader half the time) and restarts it, then
// checks each name's history with porcupine. It fails when a name's history is not
// linearizable (porcupine's HTML is written to the output dir) or when a write failed with
// an error that says neither "may or may not have been applied" nor "was not applied".
func TestNoRaceJepsen(t *testing.T) {
	if testing.Short() {
		t.Skip("the storm takes a minute; not with -short")
	}
	dur := 40 * time.Second
	if *flagLong {
		dur = 5 * time.Minute
	}
	if *flagDuration > 0 {
		dur = *flagDuration
	}
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	out := *flagOut
	if out == "" {
		out = t.ArtifactDir()
	}
	t.Logf("jepsen: %d clients, %d names, %s storm, seed %d, output in %s", *flagClients, *flagKeys, dur, seed, out)

	bin := *flagBin
	if bin == "" {
		bin = buildV9(t)
	}
	c := newCluster(t, bin, out, 3, *flagSnapshot)
	for _, a := range c.agents {
		if err := a.start(c.bin); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := c.bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.waitReady(ctx); err != nil {
		t.Fatal(err)
	}

	keys := make([]string, *flagKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("jepsen-%d", i)
	}
	h := NewHistory()
	var unclassified errorLog
	storm, stop := context.WithTimeout(t.Context(), dur)
	defer stop()

	var wg sync.WaitGroup
	for i := range *flagClients {
		wg.Go(func() {
			runClient(storm, h, &unclassified, c.agents[i%len(c.agents)], keys, i, rand.New(rand.NewPCG(seed, uint64(i))))
		})
	}
	var cycles, leaderKills atomic.Int64
	var nemesisErr error
	wg.Go(func() {
		nemesisErr = nemesis(storm, c, rand.New(rand.NewPCG(seed, 1<<32)), &cycles, &leaderKills)
	})
	wg.Wait()
	if nemesisErr != nil {
		t.Fatal(nemesisErr)
	}

	// Every node back, then one last consistent read of every name, so each history ends
	// with what the cluster settled on.
	for _, a := range c.agents {
		if !a.running() {
			if err := a.start(c.bin); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel = context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := c.waitReady(ctx); err != nil {
		t.Fatal(err)
	}
	final := client.New(c.agents[0].api, client.WithToken(adminSecret), client.WithTimeout(10*time.Second))
	for _, k := range keys {
		do(ctx, h, &unclassified, final, c.agents[0].id, h.ClientID(), Input{Key: k, Kind: Read})
	}

	res, err := h.Check(checkTimeout, out)
	if err != nil {
		t.Fatal(err)
	}
	n := h.Counts()
	var per []string
	bad := false
	for _, r := range res {
		per = append(per, fmt.Sprintf("%s=%s(%d ops)", r.Key, r.Result, r.Ops))
		if r.Result == porcupine.Illegal {
			bad = true
			t.Errorf("history of %s is not linearizable: %s", r.Key, r.HTML)
		}
	}
	t.Logf("jepsen: %d ops: %d ok, %d failed (not applied), %d indeterminate (%d unclassified); %d kill cycles, %d of the leader; linearizable per name: %s",
		n.Ops, n.OK, n.Failed, n.Unknown, n.Unclassified, cycles.Load(), leaderKills.Load(), strings.Join(per, " "))
	if n.Unclassified > 0 {
		t.Errorf("%d writes failed with an error saying neither %q nor %q, e.g.:\n%s", n.Unclassified, phraseMaybe, phraseNot, unclassified.String())
	}
	if !bad && n.Unclassified == 0 && cycles.Load() == 0 {
		t.Error("no node was killed: the storm tested nothing")
	}
}

// nemesis kills a node every 2-4 s, the leader half the time, and restarts it after up to
// maxDown. At most one node is down at a time.
func nemesis(ctx context.Context, c *cluster, rnd *rand.Rand, cycles, leaderKills *atomic.Int64) error {
	for {
		wait := killEvery/2 + time.Duration(rnd.Int64N(int64(killEvery)))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		// An agent that exited by itself (say, its port was taken) is started again.
		for _, a := range c.agents {
			if !a.running() {
				if err := a.start(c.bin); err != nil {
					return err
				}
			}
		}
		var victim *agent
		if rnd.IntN(2) == 0 {
			victim = c.leader(ctx)
		}
		if victim != nil {
			leaderKills.Add(1)
		} else {
			victim = c.agents[rnd.IntN(len(c.agents))]
		}
		victim.kill()
		cycles.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(rnd.Int64N(int64(maxDown)))):
		}
		if err := victim.start(c.bin); err != nil {
			return err
		}
	}
}

// runClient issues random operations against one node until ctx ends.
func runClient(ctx context.Context, h *History, uncl *errorLog, a *agent, keys []string, n int, rnd *rand.Rand) {
	cl := client.New(a.api, client.WithToken(adminSecret), client.WithTimeout(opTimeout))
	id := h.ClientID()
	for seq := 0; ctx.Err() == nil; seq++ {
		in := Input{Key: keys[rnd.IntN(len(keys))]}
		switch p := rnd.IntN(100); {
		case p < 40:
			in.Kind = Read
		case p < 60:
			in.Kind = Create
		case p < 85:
			in.Kind = Update
		default:
			in.Kind = Delete
		}
		if in.Kind == Create || in.Kind == Update {
			in.Value = fmt.Sprintf("c%d-%d", n, seq)
		}
		o := do(ctx, h, uncl, cl, a.id, id, in)
		if o.Output.Result == Unknown {
			id = h.ClientID() // the operation stays open to the end; this client goes on as a new one
		}
		if o.Drop {
			// Most likely the node is down: wait a little before the next try.
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// do runs one operation through the API and records it.
func do(ctx context.Context, h *History, uncl *errorLog, cl *client.Client, node string, id int, in Input) Outcome {
	// The storm's end must not cut a call short (that would make it indeterminate).
	cctx := context.WithoutCancel(ctx)
	call := h.Now()
	var comp *statev1.Component
	var err error
	switch in.Kind {
	case Create:
		var r *connect.Response[componentv1.CreateResponse]
		r, err = cl.Components.Create(cctx, connect.NewRequest(&componentv1.CreateRequest{
			Name: in.Key, Runtime: statev1.Runtime_RUNTIME_WASM, Spec: spec(in.Value),
		}))
		if err == nil {
			comp = r.Msg.Component
		}
	case Update:
		var r *connect.Response[componentv1.UpdateSpecResponse]
		r, err = cl.Components.UpdateSpec(cctx, connect.NewRequest(&componentv1.UpdateSpecRequest{Name: in.Key, Spec: spec(in.Value)}))
		if err == nil {
			comp = r.Msg.Component
		}
	case Delete:
		_, err = cl.Components.Delete(cctx, connect.NewRequest(&componentv1.DeleteRequest{Name: in.Key}))
	case Read:
		var r *connect.Response[componentv1.GetResponse]
		r, err = cl.Components.Get(cctx, connect.NewRequest(&componentv1.GetRequest{Name: in.Key, Read: &componentv1.ReadOptions{Consistent: true}}))
		if err == nil {
			comp = r.Msg.Component
		}
	}
	o := Classify(in.Kind, comp.GetSpec().GetEnv()[envKey], err)
	meta := node
	if err != nil {
		meta += ": " + err.Error()
	}
	if o.Unclassified {
		uncl.add(fmt.Sprintf("%s %s on %s: %v", in.Kind, in.Key, node, err))
	}
	h.Add(id, in, call, o, meta)
	return o
}

func spec(v string) *statev1.ComponentSpec {
	return &statev1.ComponentSpec{Env: map[string]string{envKey: v}, ScaleMin: 0, ScaleMax: 1}
}

// errorLog keeps the first few unclassified errors for the test's message.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.msgs) < 10 {
		l.msgs = append(l.msgs, s)
	}
}

func (l *errorLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "\n")
}
