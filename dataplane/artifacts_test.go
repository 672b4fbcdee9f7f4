package dataplane

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/velocity9/v9/runtime/artifact"
)

// lyingPeer serves any requested artifact with the wrong bytes.
type lyingPeer struct{}

func (lyingPeer) APIAddr(string) string { return "" }
func (lyingPeer) OpenArtifact(context.Context, string, string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("not what you asked for")), nil
}

func TestArtifactWithWrongDigestFromPeerIsRejected(t *testing.T) {
	h, _ := fakeHarness(t)
	h.dp.cfg.Peers = lyingPeer{}
	want := "sha256:" + strings.Repeat("ab", 32)
	err := h.dp.fetchFrom(context.Background(), "10.0.0.2:7900", want)
	if !errors.Is(err, artifact.ErrDigestMismatch) {
		t.Fatalf("fetch with wrong bytes: %v, want a digest mismatch", err)
	}
	if h.dp.cfg.Artifacts.Has(want) {
		t.Fatal("artifact with wrong content kept")
	}
	if list := h.dp.Held(); len(list) != 0 {
		t.Fatalf("store holds %v after a rejected fetch", list)
	}
}

func TestArtifactGCKeepsReferencedAndPinned(t *testing.T) {
	h, _ := fakeHarness(t)
	h.component(false, "v1")
	arts := h.dp.cfg.Artifacts
	orphan, err := arts.Put(strings.NewReader("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := arts.Put(strings.NewReader("in flight"))
	if err != nil {
		t.Fatal(err)
	}
	unpin := h.dp.Pin(pinned)
	removed, err := h.dp.GC()
	if err != nil || len(removed) != 1 || removed[0] != orphan {
		t.Fatalf("gc removed %v, %v; want only %s", removed, err, orphan)
	}
	unpin()
	if removed, _ := h.dp.GC(); len(removed) != 1 || removed[0] != pinned {
		t.Fatalf("gc after unpin removed %v", removed)
	}
}
