package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/containerd/containerd"

	"github.com/velocity9/v9/runtime"
)

// instance is one container of a placement, running or exited.
type instance struct {
	id      string       // placement id ("" for a standby not claimed yet)
	cid     string       // container id
	spec    runtime.Spec // what it was started from, for a standby after it stops
	addr    string       // the container's address and port, on the bridge
	timeout time.Duration
	proxy   *httputil.ReverseProxy
	stdout  *lineWriter
	stderr  *lineWriter
	log     *slog.Logger

	task       containerd.Task
	waitCancel context.CancelFunc
	done       chan struct{}

	mu       sync.Mutex
	err      error
	status   uint32
	stopping bool // Stop asked for the exit: Err stays nil
	detached bool // Close let go of the container: Done never closes
}

var _ runtime.Instance = (*instance)(nil)

func (e *Executor) newInstance(spec runtime.Spec, cid, addr string) *instance {
	inst := &instance{
		id:      spec.ID,
		cid:     cid,
		spec:    spec,
		addr:    addr,
		timeout: spec.Timeout,
		stdout:  newLineWriter("stdout", spec.Log),
		stderr:  newLineWriter("stderr", spec.Log),
		log:     e.log.With("instance", spec.ID, "component", spec.Component, "container", cid),
		done:    make(chan struct{}),
	}
	inst.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = inst.addr
			pr.Out.Host = pr.In.Host
			// Keep what v9's proxy (or the client) said in X-Forwarded-*, and add this hop.
			fwdHost, fwdProto := pr.In.Header.Get("X-Forwarded-Host"), pr.In.Header.Get("X-Forwarded-Proto")
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
			if fwdHost != "" {
				pr.Out.Header.Set("X-Forwarded-Host", fwdHost)
			}
			if fwdProto != "" {
				pr.Out.Header.Set("X-Forwarded-Proto", fwdProto)
			}
		},
		Transport:     e.transport,
		FlushInterval: -1, // stream: server-sent events and chunked responses go out as written
		ErrorHandler:  inst.proxyError,
	}
	return inst
}

func (i *instance) ID() string { return i.id }

// Done is closed when the container's task exits, whether it crashed or Stop ended it.
func (i *instance) Done() <-chan struct{} { return i.done }

// Err says why the instance ended once Done is closed: "exited with status N" when the
// process exited on its own, nil when Stop ended it.
func (i *instance) Err() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.err
}

// ServeHTTP forwards the request to the container's address.
func (i *instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if i.exited() {
		// Its address is gone with its namespace: a dial would wait for ARP to give up.
		i.proxyError(w, r, errors.New("instance ended"))
		return
	}
	if i.timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), i.timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	i.proxy.ServeHTTP(w, r)
}

func (i *instance) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(r.Context().Err(), context.Canceled):
		return // the client went away
	case errors.Is(err, context.DeadlineExceeded):
		i.log.Warn("request timed out", "path", r.URL.Path, "timeout", i.timeout)
		http.Error(w, "component timed out", http.StatusGatewayTimeout)
	default:
		select {
		case <-i.done:
			if ierr := i.Err(); ierr != nil {
				err = fmt.Errorf("instance ended: %w", ierr)
			} else {
				err = errors.New("instance stopped")
			}
		default:
		}
		i.log.Warn("proxy to container failed", "path", r.URL.Path, "err", err)
		http.Error(w, "component instance unavailable", http.StatusBadGateway)
	}
}

// watch waits for the task's exit in the background. It must be called before the task
// starts, so that an exit is never missed.
func (i *instance) watch(ctx context.Context, task containerd.Task) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	exitC, err := task.Wait(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("wait for task: %w", err)
	}
	i.task = task
	i.waitCancel = cancel
	go func() {
		st := <-exitC
		i.mu.Lock()
		detached := i.detached
		i.mu.Unlock()
		if detached {
			return
		}
		code, _, err := st.Result()
		// Let the copies of stdout and stderr drain, so the last lines reach the logs and
		// the error of a failed start.
		if cio := task.IO(); cio != nil {
			drained := make(chan struct{})
			go func() { cio.Wait(); close(drained) }()
			select {
			case <-drained:
			case <-time.After(time.Second):
			}
		}
		i.stdout.Flush()
		i.stderr.Flush()
		i.mu.Lock()
		i.status = code
		switch {
		case i.stopping:
		case err != nil:
			i.err = fmt.Errorf("lost the container's exit status: %w", err)
		default:
			i.err = exitError(code)
		}
		stopping, log := i.stopping, i.log
		i.mu.Unlock()
		cancel()
		close(i.done)
		if stopping {
			log.Info("container stopped", "status", code)
		} else {
			log.Warn("container exited", "status", code, "err", err)
		}
	}()
	return nil
}

// exitError words an exit status for the placement's status.
func exitError(code uint32) error {
	if code > 128 && code < 128+65 {
		return fmt.Errorf("exited with status %d (killed by signal %d)", code, code-128)
	}
	return fmt.Errorf("exited with status %d", code)
}

// exited reports whether the task has exited.
func (i *instance) exited() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

// claim makes a standby instance the instance of spec's placement, before its task starts
// (no request reaches it yet).
func (i *instance) claim(spec runtime.Spec, log *slog.Logger) {
	i.mu.Lock()
	i.id, i.spec, i.timeout = spec.ID, spec, spec.Timeout
	i.log = log.With("instance", spec.ID, "component", spec.Component, "container", i.cid)
	i.mu.Unlock()
	i.stdout.setFn(spec.Log)
	i.stderr.setFn(spec.Log)
}

// specOf returns the spec the instance was started from.
func (i *instance) specOf() runtime.Spec {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.spec
}

func (i *instance) setStopping() {
	i.mu.Lock()
	i.stopping = true
	i.mu.Unlock()
}

// detach stops watching the container and reading its output, leaving it running. Its
// stdio FIFOs stay on disk for the next agent to reattach.
func (i *instance) detach() {
	i.mu.Lock()
	i.detached = true
	i.mu.Unlock()
	if i.waitCancel != nil {
		i.waitCancel()
	}
	if i.task != nil {
		if cio := i.task.IO(); cio != nil {
			cio.Cancel()
		}
	}
}
