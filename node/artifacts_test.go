package node

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
	"github.com/velocity9/v9/runtime/artifact"
)

// lyingPeer serves any requested artifact with the wrong bytes.
type lyingPeer struct{}

func (lyingPeer) Fetch(_ context.Context, _ *connect.Request[deployv1.FetchRequest], s *connect.ServerStream[deployv1.FetchResponse]) error {
	return s.Send(&deployv1.FetchResponse{Chunk: []byte("not what you asked for"), Size: 22})
}

func TestArtifactWithWrongDigestFromPeerIsRejected(t *testing.T) {
	c := NewTestCluster(t, 1)
	n := c.Nodes[0]
	mux := http.NewServeMux()
	mux.Handle(deployv1connect.NewArtifactServiceHandler(lyingPeer{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	want := "sha256:" + strings.Repeat("ab", 32)
	err := n.fetchFrom(context.Background(), strings.TrimPrefix(srv.URL, "http://"), want)
	if !errors.Is(err, artifact.ErrDigestMismatch) {
		t.Fatalf("fetch with wrong bytes: %v, want a digest mismatch", err)
	}
	if n.artifacts.Has(want) {
		t.Fatal("artifact with wrong content kept")
	}
	if list, _ := n.artifacts.List(); len(list) != 0 {
		t.Fatalf("store holds %v after a rejected fetch", list)
	}
}

func TestArtifactGCKeepsReferencedAndPinned(t *testing.T) {
	c := NewTestCluster(t, 1)
	n := c.Nodes[0]
	orphan, err := n.artifacts.Put(strings.NewReader("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := n.artifacts.Put(strings.NewReader("in flight"))
	if err != nil {
		t.Fatal(err)
	}
	unpin := n.fetches.pin(pinned)
	removed, err := n.gcArtifacts()
	if err != nil || len(removed) != 1 || removed[0] != orphan {
		t.Fatalf("gc removed %v, %v; want only %s", removed, err, orphan)
	}
	unpin()
	if removed, _ := n.gcArtifacts(); len(removed) != 1 || removed[0] != pinned {
		t.Fatalf("gc after unpin removed %v", removed)
	}
}
