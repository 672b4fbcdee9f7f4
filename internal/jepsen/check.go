package jepsen

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// History records operations as clients finish them. It is safe for concurrent use.
type History struct {
	start time.Time

	mu      sync.Mutex
	ops     []porcupine.Operation
	unknown []int // indexes in ops whose return time is the end of the history
	counts  Counts
	nextID  int
}

// Counts sums up a history.
type Counts struct {
	Ops          int // every operation attempted
	OK           int // answered, including definite NotFound/Exists answers
	Failed       int // certainly without effect: left out of the history
	Unknown      int // writes that may or may not have been applied
	Unclassified int // write errors that said neither, listed in Unclassified
}

// NewHistory starts a history; times are measured from now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the time to give Add as an operation's call time.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// ClientID returns a fresh client id. A client takes a new one after an operation whose
// outcome is unknown, since that operation stays open until the end of the history (as
// Jepsen does with its processes).
func (h *History) ClientID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.nextID
	h.nextID++
	return id
}

// Add records an operation of client called at call (from Now) that ended with o. meta
// describes it in the visualization (the node asked, the error).
func (h *History) Add(client int, in Input, call int64, o Outcome, meta string) {
	ret := h.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts.Ops++
	switch {
	case o.Drop:
		h.counts.Failed++
		return
	case o.Output.Result == Unknown:
		h.counts.Unknown++
		if o.Unclassified {
			h.counts.Unclassified++
		}
		h.unknown = append(h.unknown, len(h.ops))
	default:
		h.counts.OK++
	}
	h.ops = append(h.ops, porcupine.Operation{
		ClientId: client, Input: in, Call: call, Output: o.Output, Return: ret, Metadata: meta,
	})
}

// Counts returns the totals so far.
func (h *History) Counts() Counts {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts
}

// KeyResult is the check of one component name.
type KeyResult struct {
	Key    string
	Ops    int
	Result porcupine.CheckResult // Ok, Illegal, or Unknown when the checker ran out of time
	HTML   string                // porcupine's visualization, written when Result is Illegal
}

// Check checks the history of every name on its own. Operations whose outcome is unknown
// return at the end of the history. When a name's history is not linearizable, porcupine's
// HTML visualization is written to dir/<name>.html.
func (h *History) Check(timeout time.Duration, dir string) ([]KeyResult, error) {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	unknown := append([]int(nil), h.unknown...)
	h.mu.Unlock()

	end := h.Now()
	for _, op := range ops {
		end = max(end, op.Return+1)
	}
	for _, i := range unknown {
		ops[i].Return = end
	}
	byKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		k := op.Input.(Input).Key
		byKey[k] = append(byKey[k], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	m := Model()
	m.DescribeOperationMetadata = func(info any) string { s, _ := info.(string); return s }
	var out []KeyResult
	for _, k := range keys {
		res, info := porcupine.CheckOperationsVerbose(m, byKey[k], timeout)
		kr := KeyResult{Key: k, Ops: len(byKey[k]), Result: res}
		if res == porcupine.Illegal && dir != "" {
			kr.HTML = filepath.Join(dir, k+".html")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return out, err
			}
			if err := porcupine.VisualizePath(m, info, kr.HTML); err != nil {
				return out, fmt.Errorf("visualize %s: %w", k, err)
			}
		}
		out = append(out, kr)
	}
	return out, nil
}
