package proxy

import (
	"net/http"
	"sync"
	"sync/atomic"
)

// VersionHeader carries, on a request one proxy forwards to another, the deployment that
// should answer it: during a canary the first proxy chooses the version, and the node that
// serves it must not choose again.
const VersionHeader = "X-V9-Version"

// Versions counts what this node's instances of each deployment answered (requests and
// 5xx), cumulative since the node started: the proxies' own figures for canary verdicts.
type Versions struct {
	m sync.Map // deployment id -> *versionCount
}

type versionCount struct{ requests, errors atomic.Uint64 }

// VersionCount is one deployment's counts.
type VersionCount struct {
	Deployment       string
	Requests, Errors uint64
}

// Count wraps an instance of a deployment so that each answer is counted.
func (v *Versions) Count(deployment string, h http.Handler) http.Handler {
	c, _ := v.m.LoadOrStore(deployment, &versionCount{})
	vc := c.(*versionCount)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The proxy's own recorder, with nothing written yet, records this answer already:
		// no second layer around every write.
		rec, ok := w.(*recorder)
		if !ok || rec.status != 0 {
			rec = &recorder{ResponseWriter: w}
		}
		h.ServeHTTP(rec, r)
		vc.requests.Add(1)
		if rec.status >= 500 {
			vc.errors.Add(1)
		}
	})
}

// Counts returns every deployment's counts.
func (v *Versions) Counts() []VersionCount {
	var out []VersionCount
	v.m.Range(func(k, c any) bool {
		vc := c.(*versionCount)
		out = append(out, VersionCount{Deployment: k.(string), Requests: vc.requests.Load(), Errors: vc.errors.Load()})
		return true
	})
	return out
}
