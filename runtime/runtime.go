// Package runtime defines how a node runs component instances: the Executor interface that
// runtime/wasm (wazero) and runtime/container (containerd) implement, and what an instance
// needs to start. It imports nothing of v9's; the node's reconciler and the proxy consume it.
package runtime

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Errors executors return. Callers test them with errors.Is.
var (
	// ErrBadArtifact: the artifact cannot run (not wasm, missing module or image archive).
	ErrBadArtifact = errors.New("bad artifact")
	// ErrNotFound: no instance with that id.
	ErrNotFound = errors.New("instance not found")
)

// LogFunc receives one line of an instance's output. stream is "stdout" or "stderr".
// It must not block for long; the caller keeps a bounded buffer.
type LogFunc func(stream, line string)

// Spec is what an executor needs to start one instance of a component.
type Spec struct {
	ID           string // the placement id; unique on the node, stable across agent restarts
	Component    string // component name, for logs and labels
	ComponentID  string
	DeploymentID string
	// SpecIndex is the component's spec_index when this spec was made: it changes with
	// anything that goes into an instance (variables, secrets, limits, the module).
	SpecIndex uint64
	// Dir is the unpacked artifact on local disk: the component's files, read-only to the
	// instance. Digest is its content address ("sha256:<hex>").
	Dir    string
	Digest string

	// Exclusive marks an instance that must never run twice in the cluster: an executor
	// whose instances can outlive the agent lets them be fenced when it dies.
	Exclusive bool

	Env         map[string]string
	MemoryBytes uint64        // 0: executor default
	Timeout     time.Duration // per request; 0: executor default
	Concurrency int           // requests one instance serves at once; 0: executor default
	MaxBody     int64         // largest request body (limits.body); 0: executor default

	Wasm      WasmSpec
	Container ContainerSpec

	Log LogFunc // may be nil
}

// WasmSpec names the module inside Dir.
type WasmSpec struct {
	Module string // path relative to Dir
	// ABI is how the module answers requests: "" for WAGI (a fresh instance of a WASI
	// command per request), "http" for warm instances of a WASI reactor (see runtime/wasm).
	ABI string
	// Reuse is how many requests a warm instance serves before it is replaced (0: the
	// executor's default; 1: a fresh instance per request).
	Reuse int
}

// ContainerSpec names the image and how to run it.
type ContainerSpec struct {
	Image        string   // image reference
	ImageArchive string   // optional OCI archive inside Dir to import instead of pulling
	Command      []string // optional; the image's entrypoint when empty
}

// Instance is one running instance. ServeHTTP handles a request routed to it (a wasm
// executor instantiates the module per request; a container executor forwards to the
// container's port).
type Instance interface {
	http.Handler
	ID() string
	// Done is closed when the instance stops on its own (a crashed container); Err then says why.
	Done() <-chan struct{}
	Err() error
}

// Executor runs instances of one runtime on this node.
type Executor interface {
	// Runtime is "wasm" or "container".
	Runtime() string
	// Start starts an instance and returns once it is ready to serve (a container's port
	// answers). A failure says why in words fit for the deployment's status.
	Start(ctx context.Context, spec Spec) (Instance, error)
	// Stop stops the instance with id: gracefully, then forcibly after a grace period.
	// Stopping an unknown id returns nil.
	Stop(ctx context.Context, id string) error
}

// Adopter is implemented by executors whose instances outlive the agent (containers).
// After a restart the reconciler lists what is still running, adopts what it still owns
// and stops the rest.
type Adopter interface {
	// Running lists the ids of instances left running by an earlier agent.
	Running(ctx context.Context) ([]string, error)
	// Adopt takes over a running instance started from spec, without restarting it.
	Adopt(ctx context.Context, spec Spec) (Instance, error)
}
