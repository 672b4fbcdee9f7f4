package dataplane

import (
	"context"
	"errors"
	"fmt"
	"github.com/velocity9/v9/internal/tick"
	"sync"
	"time"

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

// Pin keeps an artifact from garbage collection (one being uploaded or built) until the
// returned function is called.
func (dp *DataPlane) Pin(digest string) func() { return dp.fetches.pin(digest) }

// Ensure makes this node's store hold an artifact, fetching it from origin or any peer when
// it lacks it, and pins it until the returned function is called (an operator snapshot
// reads it meanwhile).
func (dp *DataPlane) Ensure(ctx context.Context, digest, origin string) (unpin func(), err error) {
	unpin = dp.fetches.pin(digest)
	unlock := dp.fetches.lock(digest)
	defer unlock()
	if !dp.cfg.Artifacts.Has(digest) {
		if err := dp.fetchArtifact(ctx, digest, origin); err != nil {
			unpin()
			return nil, err
		}
	}
	return unpin, nil
}

// Held lists the artifacts in this node's store, for placement preferences.
func (dp *DataPlane) Held() []string {
	list, err := dp.cfg.Artifacts.List()
	if err != nil {
		return nil
	}
	return list
}

// artifactDir returns the unpacked artifact of a deployment, fetching it from a peer first
// when this node lacks it.
func (dp *DataPlane) artifactDir(ctx context.Context, d *statev1.Deployment) (string, error) {
	if d.ArtifactDigest == "" {
		return "", fmt.Errorf("deployment %s has no artifact", d.Id)
	}
	defer dp.fetches.pin(d.ArtifactDigest)()
	unlock := dp.fetches.lock(d.ArtifactDigest)
	defer unlock()
	arts := dp.cfg.Artifacts
	if !arts.Has(d.ArtifactDigest) {
		if err := dp.fetchArtifact(ctx, d.ArtifactDigest, d.ArtifactOrigin); err != nil {
			return "", err
		}
	}
	return arts.Dir(d.ArtifactDigest)
}

// fetchArtifact copies an artifact from the node that stored it, else from any peer, and
// verifies its digest before keeping it.
func (dp *DataPlane) fetchArtifact(ctx context.Context, digest, origin string) error {
	self := dp.cfg.NodeID
	var addrs []string
	if origin != "" && origin != self {
		a := ""
		if nd, err := dp.state().Node(origin); err == nil {
			a = nd.ApiAddr
		} else {
			a = dp.cfg.Peers.APIAddr(origin)
		}
		if a != "" {
			addrs = append(addrs, a)
		}
	}
	for _, nd := range dp.state().Nodes() {
		if nd.Id != self && nd.Id != origin {
			addrs = append(addrs, nd.ApiAddr)
		}
	}
	var errs []error
	for _, addr := range addrs {
		err := dp.fetchFrom(ctx, addr, digest)
		if err == nil {
			dp.log.Info("fetched artifact", "digest", digest, "from", addr)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return fmt.Errorf("fetch artifact %s: no peer provided it: %w", digest, errors.Join(errs...))
}

func (dp *DataPlane) fetchFrom(ctx context.Context, addr, digest string) error {
	rc, err := dp.cfg.Peers.OpenArtifact(ctx, addr, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	return dp.cfg.Artifacts.PutVerified(rc, digest)
}

// GC removes stored artifacts that no deployment in the state references and that no
// fetch or upload is using.
func (dp *DataPlane) GC() ([]string, error) {
	dp.fetches.mu.Lock()
	keep := map[string]bool{}
	for d := range dp.fetches.pinned {
		keep[d] = true
	}
	// Read the state while holding the pins, so an upload that just committed is seen.
	for _, d := range dp.cfg.Store.State().Deployments {
		keep[d.ArtifactDigest] = true
	}
	dp.fetches.mu.Unlock()
	removed, err := dp.cfg.Artifacts.GC(keep)
	if len(removed) > 0 {
		dp.log.Info("removed unreferenced artifacts", "count", len(removed))
	}
	return removed, err
}

// gcLoop collects unreferenced artifacts every interval.
func (dp *DataPlane) gcLoop(ctx context.Context) {
	tick.Every(ctx, artifactGCInterval, func() {
		if !dp.src.onReplica() {
			return // a stale replica may not know the deployments that need an artifact
		}
		if _, err := dp.GC(); err != nil {
			dp.log.Warn("artifact gc", "err", err)
		}
	})
}

const artifactGCInterval = 10 * time.Minute
