package sched

import (
	"testing"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func scaled(replicas, lo, hi, conc uint32, rt statev1.Runtime) *statev1.State {
	s := world(replicas, node("a", rt))
	c := s.Components[0]
	c.Runtime = rt
	c.Spec.ScaleMin, c.Spec.ScaleMax, c.Spec.Concurrency = lo, hi, conc
	return s
}

func TestAutoscaleUpWithLoadDownWhenIdle(t *testing.T) {
	now := time.Unix(1000, 0)
	s := scaled(1, 1, 5, 10, wasm)
	// 30 in flight at concurrency 10, target 0.7: ceil(30/7) = 5.
	d := Autoscale(s, map[string]Load{"hello": {InFlight: 30, Rate: 100}}, nil, now, Policy{})
	if len(d) != 1 || d[0].To != 5 {
		t.Fatalf("under load: %+v", d)
	}
	// Past max is clamped.
	if d := Autoscale(s, map[string]Load{"hello": {InFlight: 300}}, nil, now, Policy{}); len(d) != 1 || d[0].To != 5 {
		t.Fatalf("clamp: %+v", d)
	}
	s.Components[0].Replicas = 5
	// Inside the hysteresis band: 12 in flight on 5×10 is 0.24 utilization... below DownAt,
	// but the cool-down since the last change holds it.
	last := map[string]time.Time{"hello": now}
	if d := Autoscale(s, map[string]Load{"hello": {InFlight: 12}}, last, now.Add(10*time.Second), Policy{}); len(d) != 0 {
		t.Fatalf("down within the cool-down: %+v", d)
	}
	if d := Autoscale(s, map[string]Load{"hello": {InFlight: 12}}, last, now.Add(31*time.Second), Policy{}); len(d) != 1 || d[0].To != 2 {
		t.Fatalf("down after the cool-down: %+v", d)
	}
	// 20 in flight on 5×10 = 0.4: inside the band, no change either way.
	if d := Autoscale(s, map[string]Load{"hello": {InFlight: 20}}, last, now.Add(time.Hour), Policy{}); len(d) != 0 {
		t.Fatalf("inside the band: %+v", d)
	}
	// Idle: back to min.
	if d := Autoscale(s, nil, last, now.Add(time.Hour), Policy{}); len(d) != 1 || d[0].To != 1 {
		t.Fatalf("idle: %+v", d)
	}
}

func TestAutoscaleToZero(t *testing.T) {
	now := time.Unix(1000, 0)
	s := scaled(1, 0, 3, 10, wasm)
	if d := Autoscale(s, nil, nil, now, Policy{}); len(d) != 1 || d[0].To != 0 {
		t.Fatalf("idle wasm at min 0: %+v", d)
	}
	s.Components[0].Replicas = 0
	if d := Autoscale(s, map[string]Load{"hello": {Rate: 0.5}}, nil, now, Policy{}); len(d) != 1 || d[0].To != 1 {
		t.Fatalf("a request to a wasm component at zero: %+v", d)
	}
	c := scaled(1, 0, 3, 10, statev1.Runtime_RUNTIME_CONTAINER)
	if d := Autoscale(c, nil, nil, now, Policy{}); len(d) != 1 || d[0].To != 0 {
		t.Fatalf("idle container at min 0: %+v", d)
	}
}

func TestAutoscaleSkips(t *testing.T) {
	now := time.Unix(1000, 0)
	load := map[string]Load{"hello": {InFlight: 100}}
	fixed := scaled(1, 1, 1, 10, wasm)
	excl := scaled(1, 0, 3, 10, wasm)
	excl.Components[0].Spec.Exclusive = true
	paused := scaled(1, 1, 3, 10, wasm)
	paused.Components[0].Desired = statev1.DesiredState_DESIRED_STATE_PAUSED
	for name, s := range map[string]*statev1.State{"min=max": fixed, "exclusive": excl, "paused": paused} {
		if d := Autoscale(s, load, nil, now, Policy{}); len(d) != 0 {
			t.Errorf("%s: %+v", name, d)
		}
	}
}

func TestAutoscaleManualChangeStartsCooldown(t *testing.T) {
	now := time.Unix(1000, 0)
	s := scaled(3, 1, 3, 10, wasm)
	s.Components[0].UpdateTime = timestamppb.New(now.Add(-5 * time.Second))
	if d := Autoscale(s, nil, nil, now, Policy{}); len(d) != 0 {
		t.Fatalf("5s after a manual scale: %+v", d)
	}
	if d := Autoscale(s, nil, nil, now.Add(time.Minute), Policy{}); len(d) != 1 || d[0].To != 1 {
		t.Fatalf("a minute later: %+v", d)
	}
}
