package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/google/renameio/v2"
)

// Rollups keep one node's request statistics per component in two tiers of time buckets,
// 10 s for the last hour and 1 min for the last 24 h, each with a latency histogram of
// fixed bounds (LatencyBoundsMs) so that buckets of many nodes, or of many intervals, add up
// and percentiles come from the sum. They are saved to a file in the node's data dir (every
// SaveInterval and at the end of Run) and read back at start, so the graphs survive an
// agent restart. Only buckets with requests are kept or written.
type Rollups struct {
	path string
	now  func() time.Time

	mu    sync.Mutex
	comps map[string]*[2]map[int64]*RollupBucket // component -> tier -> bucket start -> bucket
	dirty bool
}

// Tier is one resolution of the rollups.
type Tier struct {
	Seconds int64 // bucket width
	Count   int64 // buckets kept
}

// Tiers: 10 s for an hour, 1 min for 24 h.
var Tiers = [2]Tier{{Seconds: 10, Count: 360}, {Seconds: 60, Count: 1440}}

// LatencyBoundsMs are the upper bounds (inclusive, ms) of the latency histogram's buckets; a
// last bucket counts what is slower than the last bound.
var LatencyBoundsMs = []float64{0.5, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
	1000, 1500, 2000, 3000, 5000, 10000, 30000}

// SaveInterval is how often Run writes the rollups when they changed.
const SaveInterval = 10 * time.Second

// RollupBucket is one interval of a component's traffic.
type RollupBucket struct {
	Start        int64     `json:"s"` // unix seconds
	Requests     uint64    `json:"n"`
	Status       [6]uint64 `json:"c"` // index 1..5 = 1xx..5xx
	LatencySumMs float64   `json:"sum"`
	LatencyMaxMs float64   `json:"max"`
	Hist         []uint64  `json:"h"` // len(LatencyBoundsMs)+1
}

// TierFor is the tier that serves a window of minutes: 10 s up to an hour, 1 min beyond.
func TierFor(minutes int) int {
	if minutes <= 60 {
		return 0
	}
	return 1
}

// OpenRollups reads the rollups saved at path (none yet is fine; an unreadable file is
// reported and set aside so that the node still starts, counting from zero).
func OpenRollups(path string, now func() time.Time) (*Rollups, error) {
	if now == nil {
		now = time.Now
	}
	r := &Rollups{path: path, now: now, comps: map[string]*[2]map[int64]*RollupBucket{}}
	if path == "" {
		return r, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read stats rollups: %w", err)
	}
	var f rollupFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		_ = os.Rename(path, path+".bad")
		return r, fmt.Errorf("stats rollups %s are unreadable (set aside as .bad): %v", path, err)
	}
	t := r.now().Unix()
	for name, tiers := range f.Components {
		for ti := range Tiers {
			for _, bk := range tiers[ti] {
				if bk == nil || len(bk.Hist) != len(LatencyBoundsMs)+1 || !inWindow(ti, bk.Start, t) {
					continue
				}
				r.tiers(name)[ti][bk.Start] = bk
			}
		}
	}
	return r, nil
}

type rollupFile struct {
	Version    int                           `json:"version"`
	Components map[string][2][]*RollupBucket `json:"components"`
}

func inWindow(tier int, start, now int64) bool {
	return start > now-Tiers[tier].Seconds*Tiers[tier].Count && start <= now
}

// tiers returns a component's tiers, made on first use; r.mu held.
func (r *Rollups) tiers(name string) *[2]map[int64]*RollupBucket {
	t, ok := r.comps[name]
	if !ok {
		t = &[2]map[int64]*RollupBucket{{}, {}}
		r.comps[name] = t
	}
	return t
}

// Record counts one request of component answered with status after d.
func (r *Rollups) Record(component string, status int, d time.Duration) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 5
	}
	ms := float64(d.Microseconds()) / 1000
	h := sort.SearchFloat64s(LatencyBoundsMs, ms)
	t := r.now().Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	tiers := r.tiers(component)
	for ti, tier := range Tiers {
		start := t - t%tier.Seconds
		b := tiers[ti][start]
		if b == nil {
			b = &RollupBucket{Start: start, Hist: make([]uint64, len(LatencyBoundsMs)+1)}
			tiers[ti][start] = b
			if len(tiers[ti])%64 == 0 {
				prune(tiers[ti], ti, t)
			}
		}
		b.Requests++
		b.Status[class]++
		b.LatencySumMs += ms
		b.LatencyMaxMs = max(b.LatencyMaxMs, ms)
		b.Hist[h]++
	}
	r.dirty = true
}

func prune(m map[int64]*RollupBucket, tier int, now int64) {
	for s := range m {
		if !inWindow(tier, s, now) {
			delete(m, s)
		}
	}
}

// Series returns the last minutes of a component's buckets in the tier that serves that
// window, oldest first, empty buckets included (Hist nil), and the bucket width.
func (r *Rollups) Series(component string, minutes int) (int64, []RollupBucket) {
	ti := TierFor(minutes)
	tier := Tiers[ti]
	n := min(int64(max(minutes, 1))*60/tier.Seconds, tier.Count)
	t := r.now().Unix()
	last := t - t%tier.Seconds
	out := make([]RollupBucket, n)
	r.mu.Lock()
	defer r.mu.Unlock()
	tiers := r.comps[component]
	for i := range out {
		start := last - (n-1-int64(i))*tier.Seconds
		out[i] = RollupBucket{Start: start}
		if tiers != nil {
			if b := tiers[ti][start]; b != nil {
				out[i] = *b
				out[i].Hist = append([]uint64(nil), b.Hist...)
			}
		}
	}
	return tier.Seconds, out
}

// Save writes the rollups to their file if they changed since the last save (a new file,
// then a rename: a crash leaves the old or the new one, never half of one).
func (r *Rollups) Save() error {
	if r.path == "" {
		return nil
	}
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return nil
	}
	t := r.now().Unix()
	f := rollupFile{Version: 1, Components: map[string][2][]*RollupBucket{}}
	for name, tiers := range r.comps {
		var out [2][]*RollupBucket
		for ti := range Tiers {
			prune(tiers[ti], ti, t)
			for _, b := range tiers[ti] {
				cp := *b
				cp.Hist = append([]uint64(nil), b.Hist...)
				out[ti] = append(out[ti], &cp)
			}
		}
		if len(out[0])+len(out[1]) == 0 {
			delete(r.comps, name)
			continue
		}
		f.Components[name] = out
	}
	r.dirty = false
	r.mu.Unlock()
	b, err := json.Marshal(&f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
		return err
	}
	if err := renameio.WriteFile(r.path, b, 0o644); err != nil {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		return err
	}
	return nil
}

// Run saves the rollups every SaveInterval until ctx ends, then once more.
func (r *Rollups) Run(ctx context.Context, logf func(msg string, args ...any)) {
	t := time.NewTicker(SaveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := r.Save(); err != nil && logf != nil {
				logf("save stats rollups", "err", err)
			}
			return
		case <-t.C:
			if err := r.Save(); err != nil && logf != nil {
				logf("save stats rollups", "err", err)
			}
		}
	}
}

// Percentile estimates the q-quantile (0 < q <= 1) of the latencies a histogram counts (ms):
// linear within the bucket it falls in, never above maxMs when maxMs > 0. 0 without counts.
func Percentile(hist []uint64, q, maxMs float64) float64 {
	return PercentileWith(LatencyBoundsMs, hist, q, maxMs)
}

// PercentileWith is Percentile for a histogram of the given bucket bounds (a client's, from a
// SeriesResponse).
func PercentileWith(bounds []float64, hist []uint64, q, maxMs float64) float64 {
	var total uint64
	for _, c := range hist {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range hist {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			lo := 0.0
			if i > 0 && i-1 < len(bounds) {
				lo = bounds[i-1]
			}
			hi := maxMs
			if i < len(bounds) {
				hi = bounds[i]
			}
			v := lo + (hi-lo)*math.Max(0, rank-cum)/float64(c)
			if maxMs > 0 {
				v = math.Min(v, maxMs)
			}
			return v
		}
		cum += float64(c)
	}
	return maxMs
}
