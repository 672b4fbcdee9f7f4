package dataplane

import (
	"fmt"
	"testing"
	"time"

	"github.com/velocity9/v9/internal/testkit"
)

// While a component served on demand has an active deployment that never served, on-demand
// starts run the newest older version that served, even when the new one would start; once
// the new one served (its readiness probe ran), it comes first again.
func TestOnDemandPrefersServedVersionOverUnproved(t *testing.T) {
	h, _ := fakeHarness(t)
	h.component(false, "v1")
	h.apply(registerNode("n2", "10.0.0.2:8080"))
	h.place("p1", "d1", "n2", run, 1)
	h.apply(setObserved("p1", running), deletePlacements("p1")) // d1 served, then scaled to zero
	h.deployment("d2", "v2")
	h.apply(activate("c1", "d2"))
	h.waitCandidates("d1", "d2")
	if code, body := h.get(); code != 200 || body != "fake d1" {
		t.Fatalf("on demand while d2 is unproved: %d %q", code, body)
	}

	h.place("p2", "d2", "n2", run, 1)
	h.apply(setObserved("p2", running), deletePlacements("p2")) // d2's probe ran: served
	h.waitCandidates("d2")
	testkit.Eventually(t, 5*time.Second, func() error {
		if code, body := h.get(); code != 200 || body != "fake d2" {
			return fmt.Errorf("on demand once d2 served: %d %q", code, body)
		}
		return nil
	})
}
