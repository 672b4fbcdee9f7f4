package node

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadGen sends GET /hello/ to the given nodes' proxies until stopped and counts failures.
// A 429 with Retry-After is the per-component fairness gate shedding load, as a client is
// told to expect: it is counted apart (shed) and the worker backs off, not a failure.
type loadGen struct {
	ok, failed, shed atomic.Int64
	last             atomic.Value
	stop             chan struct{}
	wg               sync.WaitGroup
}

func startLoad(nodes []*Node, workers int) *loadGen {
	return startLoadPath(nodes, workers, "/hello/", 2*time.Millisecond)
}

// startLoadPath is startLoad with the path asked and the pause between two requests of a
// worker.
func startLoadPath(nodes []*Node, workers int, path string, pause time.Duration) *loadGen {
	g := &loadGen{stop: make(chan struct{})}
	for i := range workers {
		n := nodes[i%len(nodes)]
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				select {
				case <-g.stop:
					return
				default:
				}
				code, body, h, err := proxyGet(n, "", path)
				if err == nil && code == 429 && h.Get("Retry-After") != "" {
					g.shed.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if err != nil || code != 200 {
					g.failed.Add(1)
					g.last.Store(fmt.Sprintf("%s: %d %q %v", n.ID(), code, body, err))
				} else {
					g.ok.Add(1)
				}
				time.Sleep(pause)
			}
		}()
	}
	return g
}

// end stops the load and fails the test if any request failed.
func (g *loadGen) end(t *testing.T, what string) {
	t.Helper()
	close(g.stop)
	g.wg.Wait()
	if g.failed.Load() != 0 || g.ok.Load() == 0 {
		t.Fatalf("%s: %d ok, %d failed; last failure %v", what, g.ok.Load(), g.failed.Load(), g.last.Load())
	}
	t.Logf("%s: %d requests, none failed (%d shed with 429 + Retry-After)", what, g.ok.Load(), g.shed.Load())
}
