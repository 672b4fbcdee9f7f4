package dataplane

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/testkit"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	v9rt "github.com/velocity9/v9/runtime"
)

// viewState is a small state: a node, a component with a deployment, a placement on n1
// and a user (which the view leaves out).
func viewState(t testing.TB) *fsm.Store {
	st := fsm.NewStore()
	cmds := []*statev1.Command{
		registerNode(self, "127.0.0.1:2"),
		createComponent("c1", "hello", false), createDeployment("d1", "c1", strings.Repeat("a", 64)), activate("c1", "d1"),
		putPlacement("p1", "c1", "d1", self, run),
		{Op: &statev1.Command_CreateUser{CreateUser: &statev1.CreateUser{User: &statev1.User{Id: "u1", Name: "ann"}}}},
	}
	for i, c := range cmds {
		if err := st.Apply(uint64(i+1), c); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	return st
}

func TestViewRoundTripAndCorruptFilesIgnored(t *testing.T) {
	b, idx, err := viewOf(viewState(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeView(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Index() != idx || idx != 6 {
		t.Fatalf("index %d, want %d = 6", st.Index(), idx)
	}
	if c, err := st.Component("hello"); err != nil || c.ActiveDeploymentId != "d1" {
		t.Fatalf("component: %v %v", c, err)
	}
	if ps := st.Placements(self); len(ps) != 1 {
		t.Fatalf("placements %v", ps)
	}
	if s := st.State(); len(s.Users) != 0 || len(s.Deployments) != 1 || len(s.Nodes) != 1 {
		t.Fatalf("view holds users %d, deployments %d, nodes %d", len(s.Users), len(s.Deployments), len(s.Nodes))
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "routing-view")
	if err := writeFileAtomic(path, b); err != nil {
		t.Fatal(err)
	}
	if loadView(path, slog.New(slog.DiscardHandler)) == nil {
		t.Fatal("a good view was not loaded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	flip := bytes.Clone(b)
	flip[len(flip)-1] ^= 1
	version := bytes.Clone(b)
	binary.BigEndian.PutUint32(version[len(viewMagic):], viewVersion+1)
	for name, bad := range map[string][]byte{
		"empty": nil, "magic": append([]byte("x"), b[1:]...), "truncated": b[:len(b)-3],
		"flipped": flip, "version": version, "longer": append(bytes.Clone(b), 0),
	} {
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		var logged bytes.Buffer
		if loadView(path, slog.New(slog.NewTextHandler(&logged, nil))) != nil {
			t.Fatalf("%s: a corrupt view was loaded", name)
		}
		if !strings.Contains(logged.String(), "routing view ignored") {
			t.Fatalf("%s: no log line: %q", name, logged.String())
		}
	}
}

// FuzzDecodeView: whatever the file holds, decoding never panics, and what it accepts
// encodes back to a view that decodes to the same state.
func FuzzDecodeView(f *testing.F) {
	b, _, err := viewOf(viewState(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:viewHeader])
	f.Add([]byte(viewMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeView(data)
		if err != nil {
			return
		}
		again, _, err := viewOf(st)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := decodeView(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// A restarted data plane whose replica is behind and whose leader is unreachable serves
// from its persisted view at once (routes and instances), and answers "starting", never
// "not found", when it has no view; once the replica has caught up it answers from it.
func TestViewServesARestartWithoutLeader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "routing-view")
	arts, err := OpenArtifacts(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	withView := func(h *harness, c *Config) { c.ViewPath, c.Artifacts = path, arts }
	ex := newFakeExec()
	h := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: ex}, withView)
	h.component(false, "hello\n")
	h.place("p1", "d1", self, run, 1)
	h.waitObserved("p1", running)
	testkit.Eventually(t, 10*time.Second, func() error {
		if st := loadView(path, slog.New(slog.DiscardHandler)); st == nil || len(st.Placements(self)) != 1 {
			return os.ErrNotExist
		}
		return nil
	})

	// The restart: an empty replica, no leader.
	ex2 := newFakeExec()
	start := time.Now()
	h2 := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: ex2}, withView,
		func(h *harness, _ *Config) { h.unreachable.Store(true) })
	if tg := h2.dp.Router().Lookup("hello"); !tg.Found || tg.Unavailable != "" {
		t.Fatalf("restarted with a view: hello is %+v", tg)
	}
	testkit.Eventually(t, 5*time.Second, func() error {
		if !ex2.isRunning("p1") {
			return os.ErrNotExist
		}
		return nil
	})
	t.Logf("restarted data plane runs its instance from the view after %v", time.Since(start))
	if tg := h2.dp.Router().Lookup("nope"); tg.Found || tg.Unavailable != "" {
		t.Fatalf("with a view, an unknown component is %+v, want not found", tg)
	}

	// No view at all: "starting" until the replica has caught up with a leader.
	h3 := newHarness(t, map[statev1.Runtime]v9rt.Executor{statev1.Runtime_RUNTIME_WASM: newFakeExec()},
		func(h *harness, _ *Config) { h.unreachable.Store(true) })
	if tg := h3.dp.Router().Lookup("hello"); !strings.Contains(tg.Unavailable, "starting") {
		t.Fatalf("no view: hello is %+v, want starting", tg)
	}
	h3.unreachable.Store(false)
	testkit.Eventually(t, 5*time.Second, func() error {
		if tg := h3.dp.Router().Lookup("hello"); tg.Found || tg.Unavailable != "" {
			return os.ErrExist
		}
		return nil
	})
}
