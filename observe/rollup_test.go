package observe

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Rollups keep 10 s buckets for the hour and 1 min buckets for the day, survive a restart
// through their file, forget what left the window, and give percentiles from a histogram.
func TestRollupsTiersAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats", "rollups.json")
	now := time.Unix(1_000_000_020, 0) // on a minute boundary + 20 s
	clock := func() time.Time { return now }
	r, err := OpenRollups(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 98; i++ {
		r.Record("hello", 200, 2*time.Millisecond)
	}
	r.Record("hello", 500, 900*time.Millisecond)
	r.Record("hello", 404, 2*time.Millisecond)
	now = now.Add(15 * time.Second) // the next 10 s bucket, same minute
	r.Record("hello", 200, 2*time.Millisecond)

	check := func(r *Rollups, what string) {
		t.Helper()
		secs, hour := r.Series("hello", 60)
		if secs != 10 || len(hour) != 360 {
			t.Fatalf("%s: hour in %d s buckets, %d of them", what, secs, len(hour))
		}
		a, b := hour[len(hour)-2], hour[len(hour)-1]
		if a.Requests != 100 || a.Status[2] != 98 || a.Status[4] != 1 || a.Status[5] != 1 || b.Requests != 1 {
			t.Fatalf("%s: last 10 s buckets %+v %+v", what, a, b)
		}
		if p50, p99 := Percentile(a.Hist, 0.5, a.LatencyMaxMs), Percentile(a.Hist, 0.99, a.LatencyMaxMs); p50 > 2 || p50 < 1.5 || p99 > 2 {
			t.Fatalf("%s: p50 %v p99 %v of 98×2 ms, 1×900 ms", what, p50, p99)
		}
		if p := Percentile(a.Hist, 1, a.LatencyMaxMs); p < 750 || p > 900 {
			t.Fatalf("%s: p100 %v, want the slow request's bucket capped at its max", what, p)
		}
		secs, day := r.Series("hello", 24*60)
		if secs != 60 || len(day) != 1440 || day[len(day)-1].Requests != 101 {
			t.Fatalf("%s: day in %d s buckets (%d), last %+v", what, secs, len(day), day[len(day)-1])
		}
	}
	check(r, "before the restart")
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenRollups(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	check(again, "after the restart")

	// Two hours later the hour is empty and the day still holds the minute.
	now = now.Add(2 * time.Hour)
	again.Record("other", 200, time.Millisecond)
	if err := again.Save(); err != nil {
		t.Fatal(err)
	}
	later, _ := OpenRollups(path, clock)
	if _, hour := later.Series("hello", 60); sum(hour) != 0 {
		t.Fatalf("the hour still counts %d requests of two hours ago", sum(hour))
	}
	if _, day := later.Series("hello", 24*60); sum(day) != 101 {
		t.Fatalf("the day counts %d requests, want 101", sum(day))
	}

	// A corrupt file is set aside; the node starts counting from zero.
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := OpenRollups(path, clock); err == nil || r == nil {
		t.Fatalf("a corrupt file: %v", err)
	}
	if _, err := os.Stat(path + ".bad"); err != nil {
		t.Fatal(err)
	}
}

func sum(bs []RollupBucket) (n uint64) {
	for _, b := range bs {
		n += b.Requests
	}
	return n
}
