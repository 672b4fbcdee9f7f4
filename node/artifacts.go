package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"connectrpc.com/connect"

	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// fetchLocks makes concurrent starts of one artifact fetch it once, and pins artifacts that
// are being fetched or uploaded so garbage collection leaves them alone.
type fetchLocks struct {
	mu     sync.Mutex
	m      map[string]*sync.Mutex
	pinned map[string]int
}

func (f *fetchLocks) pin(digest string) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pinned == nil {
		f.pinned = map[string]int{}
	}
	f.pinned[digest]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.pinned[digest]--; f.pinned[digest] <= 0 {
			delete(f.pinned, digest)
		}
	}
}

func (f *fetchLocks) lock(digest string) func() {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]*sync.Mutex{}
	}
	l, ok := f.m[digest]
	if !ok {
		l = &sync.Mutex{}
		f.m[digest] = l
	}
	f.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// artifactDir returns the unpacked artifact of a deployment, fetching it from a peer first
// when this node lacks it.
func (n *Node) artifactDir(ctx context.Context, d *statev1.Deployment) (string, error) {
	if d.ArtifactDigest == "" {
		return "", fmt.Errorf("deployment %s has no artifact", d.Id)
	}
	defer n.fetches.pin(d.ArtifactDigest)()
	unlock := n.fetches.lock(d.ArtifactDigest)
	defer unlock()
	if !n.artifacts.Has(d.ArtifactDigest) {
		if err := n.fetchArtifact(ctx, d.ArtifactDigest, d.ArtifactOrigin); err != nil {
			return "", err
		}
	}
	return n.artifacts.Dir(d.ArtifactDigest)
}

// fetchArtifact copies an artifact from the node that stored it, else from any peer, and
// verifies its digest before keeping it.
func (n *Node) fetchArtifact(ctx context.Context, digest, origin string) error {
	var addrs []string
	if a := n.apiAddrOf(origin); origin != "" && origin != n.cfg.ID && a != "" {
		addrs = append(addrs, a)
	}
	for _, nd := range n.fsm.Store.Nodes() {
		if nd.Id != n.cfg.ID && nd.Id != origin {
			addrs = append(addrs, nd.ApiAddr)
		}
	}
	var errs []error
	for _, addr := range addrs {
		err := n.fetchFrom(ctx, addr, digest)
		if err == nil {
			n.log.Info("fetched artifact", "digest", digest, "from", addr)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return fmt.Errorf("fetch artifact %s: no peer provided it: %w", digest, errors.Join(errs...))
}

func (n *Node) fetchFrom(ctx context.Context, addr, digest string) error {
	stream, err := n.peers.get(addr).artifacts.Fetch(ctx, connect.NewRequest(&deployv1.FetchRequest{Digest: digest}))
	if err != nil {
		return err
	}
	defer stream.Close()
	pr, pw := io.Pipe()
	go func() {
		for stream.Receive() {
			if _, err := pw.Write(stream.Msg().Chunk); err != nil {
				return
			}
		}
		pw.CloseWithError(stream.Err()) // nil → EOF
	}()
	err = n.artifacts.PutVerified(pr, digest)
	pr.CloseWithError(errors.New("fetch ended"))
	return err
}

// OpenArtifact serves a stored artifact to a peer.
func (n *Node) OpenArtifact(digest string) (io.ReadCloser, int64, error) {
	if !n.artifacts.Has(digest) {
		return nil, 0, connect.NewError(connect.CodeNotFound, fmt.Errorf("artifact %s is not stored on %s", digest, n.cfg.ID))
	}
	return n.artifacts.Get(digest)
}

// gcArtifacts removes stored artifacts that no deployment in the state references and that
// no fetch or upload is using.
func (n *Node) gcArtifacts() ([]string, error) {
	n.fetches.mu.Lock()
	keep := map[string]bool{}
	for d := range n.fetches.pinned {
		keep[d] = true
	}
	// Read the state while holding the pins, so an upload that just committed is seen.
	for _, d := range n.fsm.Store.State().Deployments {
		keep[d.ArtifactDigest] = true
	}
	n.fetches.mu.Unlock()
	removed, err := n.artifacts.GC(keep)
	if len(removed) > 0 {
		n.log.Info("removed unreferenced artifacts", "count", len(removed))
	}
	return removed, err
}

// gcLoop collects unreferenced artifacts every interval.
func (n *Node) gcLoop(ctx context.Context) {
	t := time.NewTicker(artifactGCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := n.gcArtifacts(); err != nil {
				n.log.Warn("artifact gc", "err", err)
			}
		}
	}
}

const artifactGCInterval = 10 * time.Minute
