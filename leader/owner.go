package leader

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Controller is a loop that acts only while this node leads. Run is called when leadership
// is established and must return promptly once ctx ends; whatever it remembered (its soft
// state) is dropped then, so the next term starts afresh.
type Controller interface {
	Name() string
	Run(ctx context.Context)
}

// ControllerFunc adapts a function to a Controller.
func ControllerFunc(name string, run func(ctx context.Context)) Controller {
	return funcController{name: name, run: run}
}

type funcController struct {
	name string
	run  func(ctx context.Context)
}

func (f funcController) Name() string            { return f.name }
func (f funcController) Run(ctx context.Context) { f.run(ctx) }

// Barrier waits until the local state holds every entry committed before the call (a Raft
// barrier). It fails when this node stops leading.
type Barrier interface {
	Barrier(ctx context.Context) error
}

// Owner starts and stops the controllers as leadership comes and goes.
type Owner struct {
	log     *slog.Logger
	barrier Barrier

	handovers chan handover

	mu          sync.Mutex
	controllers []Controller
	leading     bool // the controllers run
}

// handover asks Run to stop the controllers and then transfer leadership.
type handover struct {
	transfer func() error
	done     chan error
}

// NewOwner returns an Owner that establishes leadership through barrier.
func NewOwner(log *slog.Logger, barrier Barrier) *Owner {
	return &Owner{log: log, barrier: barrier, handovers: make(chan handover)}
}

// Handover hands leadership over: every controller stops, and only then does transfer (a
// Raft leadership transfer) run, so none of them runs beside the next leader's (Raft alone
// lets the old leader lead on until it hears of the new term, after the new one has
// committed). If transfer fails, the controllers start again should this node still lead
// (after a barrier, as on any gain of leadership). It returns transfer's error, or ctx's if
// Run does not take the handover in time.
func (o *Owner) Handover(ctx context.Context, transfer func() error) error {
	h := handover{transfer: transfer, done: make(chan error, 1)}
	select {
	case o.handovers <- h:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-h.done
}

// Register adds controllers. It must be called before Run.
func (o *Owner) Register(cs ...Controller) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.controllers = append(o.controllers, cs...)
}

// Leading reports whether the controllers run (leadership established and not revoked).
func (o *Owner) Leading() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.leading
}

// barrierBackoff is the pause between two failed barriers while still leading.
const barrierBackoff = 100 * time.Millisecond

// Run follows leadership from leaderCh (true: gained, false: lost; hashicorp/raft's
// LeaderCh, which keeps only the latest value, so a true while leading means leadership
// was lost and regained meanwhile) until ctx ends, then stops the controllers.
func (o *Owner) Run(ctx context.Context, leaderCh <-chan bool) {
	var term *term
	defer func() { o.revoke(term) }()
	var pending *bool
	for {
		var lead bool
		if pending != nil {
			lead, pending = *pending, nil
		} else {
			select {
			case <-ctx.Done():
				return
			case lead = <-leaderCh:
			case h := <-o.handovers:
				// The controllers stop before the transfer starts; a failed transfer
				// re-establishes, and the barrier fails (then waits for leaderCh) if this
				// node no longer leads.
				leading := term != nil
				o.revoke(term)
				term = nil
				err := h.transfer()
				h.done <- err
				if err == nil || !leading {
					continue
				}
				lead = true
			}
		}
		// Whatever happens next, the previous term ends first.
		o.revoke(term)
		term = nil
		if !lead {
			continue
		}
		// Establish: a barrier, retried while this node still leads, then the controllers.
		for backoff := barrierBackoff; ; {
			err := o.barrier.Barrier(ctx)
			if err == nil {
				// A change of leadership that arrived during the barrier wins: never start
				// controllers for a term already over.
				select {
				case v := <-leaderCh:
					pending = &v
				default:
					term = o.establish(ctx)
				}
				break
			}
			o.log.Warn("leadership: barrier failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case v := <-leaderCh:
				pending = &v
			case <-time.After(backoff):
				backoff = min(2*backoff, 2*time.Second)
				continue
			}
			break
		}
	}
}

// term is one establishment of leadership: the running controllers.
type term struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time
}

func (o *Owner) establish(parent context.Context) *term {
	o.mu.Lock()
	defer o.mu.Unlock()
	ctx, cancel := context.WithCancel(parent)
	t := &term{cancel: cancel, start: time.Now()}
	for _, c := range o.controllers {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			c.Run(ctx)
		}()
	}
	o.leading = true
	o.log.Info("leadership established: controllers started", "controllers", len(o.controllers))
	return t
}

// revoke stops a term's controllers and waits for every one of them to return.
func (o *Owner) revoke(t *term) {
	if t == nil {
		return
	}
	t.cancel()
	t.wg.Wait()
	o.mu.Lock()
	o.leading = false
	o.mu.Unlock()
	o.log.Info("leadership revoked: controllers stopped", "led_for", time.Since(t.start).Round(time.Millisecond))
}
