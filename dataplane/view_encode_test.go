package dataplane

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// The incremental view encoder writes a view that decodes to the same state as one encoded
// from scratch (viewOf), after every few writes of random histories: components created,
// deleted and re-created, given secrets, deployments activated, placements put, observed and
// deleted, nodes added and marked down, and once an older state restored. It is also, byte
// for byte, the view a new encoder writes.
func TestViewEncoderMatchesViewOf(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { viewHistory(t, seed, 200) })
	}
}

func viewHistory(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 3))
	st := fsm.NewStore()
	var idx uint64
	apply := func(cmd *statev1.Command) {
		idx++
		_ = st.Apply(idx, cmd) // refused commands change nothing
	}
	apply(registerNode(self, "127.0.0.1:1"))
	names := []string{"a", "b", "c", "d"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	ids := map[string]string{}
	var deps, places []string
	var enc viewEncoder
	var old *statev1.State
	for step := 0; step < steps; step++ {
		seq := fmt.Sprint(step)
		name := pick(names)
		id := ids[name]
		switch rng.IntN(10) {
		case 0, 1:
			apply(createComponent("c"+seq, name, false))
			if c, err := st.Component(name); err == nil {
				ids[name] = c.Id
			}
		case 2:
			apply(&statev1.Command{Op: &statev1.Command_DeleteComponent{DeleteComponent: &statev1.DeleteComponent{Name: name}}})
		case 3:
			apply(createDeployment("d"+seq, id, "sha256:x"))
			deps = append(deps, "d"+seq)
			if rng.IntN(2) == 0 {
				apply(activate(id, "d"+seq))
			}
		case 4, 5:
			if len(deps) > 0 {
				apply(putPlacement("p"+seq, id, pick(deps), self, run))
				places = append(places, "p"+seq)
			}
		case 6:
			if len(places) > 0 {
				apply(setObserved(pick(places), statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING))
			}
		case 7:
			if len(places) > 0 {
				apply(deletePlacements(pick(places)))
			}
		case 8:
			apply(&statev1.Command{Op: &statev1.Command_PutSecret{PutSecret: &statev1.PutSecret{
				Component: name, Name: pick([]string{"A", "B"}), KeyId: "k", Nonce: []byte{1}, Ciphertext: []byte(seq)}}})
		case 9:
			n := pick([]string{"n2", "n3"})
			apply(registerNode(n, n+":8080"))
			apply(&statev1.Command{Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{Id: n, Status: statev1.NodeStatus_NODE_STATUS_DOWN}}})
		}
		if step == steps/3 {
			old = st.State()
		}
		if step == steps/2 { // back to an older state, as a snapshot install does
			if err := st.Restore(old); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(3) == 0 && step != steps-1 {
			continue
		}
		got, gotIdx, err := enc.encode(st)
		if err != nil {
			t.Fatal(err)
		}
		want, wantIdx, err := viewOf(st)
		if err != nil {
			t.Fatal(err)
		}
		g, w := decodedState(t, got), decodedState(t, want)
		if gotIdx != wantIdx || !bytes.Equal(g, w) {
			t.Fatalf("step %d: the incremental view (index %d) differs from viewOf's (index %d)", step, gotIdx, wantIdx)
		}
		// Byte for byte as a new encoder's: the components in id order, kept as they come
		// and go rather than sorted again each time.
		var fresh viewEncoder
		if again, _, err := fresh.encode(st); err != nil || !bytes.Equal(got, again) || len(enc.ids) != len(enc.parts) {
			t.Fatalf("step %d: the incremental view is not the one a new encoder writes (%v; %d ids for %d parts)", step, err, len(enc.ids), len(enc.parts))
		}
	}
}

func decodedState(t *testing.T, view []byte) []byte {
	t.Helper()
	st, err := decodeView(view)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fsm.EncodeSnapshot(st.State())
	if err != nil {
		t.Fatal(err)
	}
	return b
}
