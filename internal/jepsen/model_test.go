package jepsen

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/anishathalye/porcupine"
)

// op builds a history entry of key "a".
func op(client int, call, ret int64, k Kind, v string, r Result, out string) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret,
		Input: Input{Key: "a", Kind: k, Value: v}, Output: Output{Result: r, Value: out}}
}

const never = 1000 // the end of these histories: unknown operations return then

func TestModel(t *testing.T) {
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"sequential", []porcupine.Operation{
			op(0, 0, 1, Create, "x", OK, "x"),
			op(0, 2, 3, Read, "", OK, "x"),
			op(0, 4, 5, Update, "y", OK, "y"),
			op(0, 6, 7, Create, "z", Exists, ""),
			op(0, 8, 9, Delete, "", OK, ""),
			op(0, 10, 11, Read, "", NotFound, ""),
			op(0, 12, 13, Update, "w", NotFound, ""),
			op(0, 14, 15, Delete, "", NotFound, ""),
		}, porcupine.Ok},
		{"stale read after an acknowledged update", []porcupine.Operation{
			op(0, 0, 1, Create, "x", OK, "x"),
			op(0, 2, 3, Update, "y", OK, "y"),
			op(1, 4, 5, Read, "", OK, "x"),
		}, porcupine.Illegal},
		{"read misses an acknowledged create", []porcupine.Operation{
			op(0, 0, 1, Create, "x", OK, "x"),
			op(1, 2, 3, Read, "", NotFound, ""),
		}, porcupine.Illegal},
		{"an applied create answered not found", []porcupine.Operation{
			op(0, 0, 3, Create, "x", NotFound, ""),
			op(1, 1, 2, Delete, "", OK, ""),
		}, porcupine.Illegal},
		{"a create answered with another write's value", []porcupine.Operation{
			op(0, 0, 3, Create, "x", OK, "y"),
			op(1, 1, 2, Update, "y", OK, "y"),
		}, porcupine.Illegal},
		{"concurrent create and delete", []porcupine.Operation{
			op(0, 0, 3, Create, "x", OK, "x"),
			op(1, 1, 2, Delete, "", OK, ""),
			op(1, 4, 5, Read, "", NotFound, ""),
		}, porcupine.Ok},
		{"an unknown create seen later", []porcupine.Operation{
			op(0, 0, never, Create, "x", Unknown, ""),
			op(1, 5, 6, Read, "", OK, "x"),
		}, porcupine.Ok},
		{"an unknown create never seen", []porcupine.Operation{
			op(0, 0, never, Create, "x", Unknown, ""),
			op(1, 5, 6, Read, "", NotFound, ""),
		}, porcupine.Ok},
		{"a value nobody wrote", []porcupine.Operation{
			op(0, 0, 1, Create, "x", OK, "x"),
			op(1, 5, 6, Read, "", OK, "q"),
		}, porcupine.Illegal},
		{"a read before the write it saw was called", []porcupine.Operation{
			op(1, 0, 1, Read, "", OK, "x"),
			op(0, 2, never, Create, "x", Unknown, ""),
		}, porcupine.Illegal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(Model(), c.ops); (got && c.want != porcupine.Ok) || (!got && c.want == porcupine.Ok) {
				t.Fatalf("linearizable = %v, want %v", got, c.want)
			}
		})
	}
}

// TestCheckWritesVisualization: an illegal history is reported per key, with porcupine's
// HTML written for that key only.
func TestCheckWritesVisualization(t *testing.T) {
	h := NewHistory()
	c := h.ClientID()
	call := h.Now()
	h.Add(c, Input{Key: "a", Kind: Create, Value: "x"}, call, Outcome{Output: Output{Result: OK, Value: "x"}}, "")
	call = h.Now()
	h.Add(c, Input{Key: "a", Kind: Read}, call, Outcome{Output: Output{Result: NotFound}}, "n1")
	call = h.Now()
	h.Add(c, Input{Key: "b", Kind: Create, Value: "y"}, call, Outcome{Output: Output{Result: Unknown}}, "")
	call = h.Now()
	h.Add(c, Input{Key: "b", Kind: Read}, call, Outcome{Drop: true}, "")

	dir := t.TempDir()
	res, err := h.Check(10*time.Second, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Key != "a" || res[0].Result != porcupine.Illegal || res[1].Result != porcupine.Ok {
		t.Fatalf("results = %+v, want a illegal, b ok", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.html")); err != nil {
		t.Fatalf("no visualization for a: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.html")); err == nil {
		t.Fatal("visualization written for a linearizable key")
	}
	if got, want := h.Counts(), (Counts{Ops: 4, OK: 2, Failed: 1, Unknown: 1}); got != want {
		t.Fatalf("counts = %+v, want %+v", got, want)
	}
}

func TestClassify(t *testing.T) {
	wire := func(c connect.Code, msg string) error { return connect.NewWireError(c, errors.New(msg)) }
	dial := connect.NewError(connect.CodeUnavailable, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	reset := connect.NewError(connect.CodeUnavailable, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
	cases := []struct {
		name string
		kind Kind
		err  error
		want Outcome
	}{
		{"ok", Update, nil, Outcome{Output: Output{Result: OK, Value: "v"}}},
		{"not found", Update, wire(connect.CodeNotFound, "component a not found"), Outcome{Output: Output{Result: NotFound}}},
		{"exists", Create, wire(connect.CodeAlreadyExists, "component a exists"), Outcome{Output: Output{Result: Exists}}},
		{"maybe", Create, wire(connect.CodeUnavailable, "leadership was lost: the write may or may not have been applied"), Outcome{Output: Output{Result: Unknown}}},
		{"not applied", Delete, wire(connect.CodeUnavailable, "no cluster leader: the write was not applied"), Outcome{Drop: true}},
		{"unclassified write error", Create, wire(connect.CodeCanceled, "context canceled"), Outcome{Output: Output{Result: Unknown}, Unclassified: true}},
		{"failed read", Read, wire(connect.CodeUnavailable, "not caught up"), Outcome{Drop: true}},
		{"refused connection", Create, dial, Outcome{Drop: true}},
		{"lost connection", Create, reset, Outcome{Output: Output{Result: Unknown}}},
		{"client deadline", Update, connect.NewError(connect.CodeDeadlineExceeded, errors.New("context deadline exceeded")), Outcome{Output: Output{Result: Unknown}}},
		{"lost connection on a read", Read, reset, Outcome{Drop: true}},
	}
	for _, c := range cases {
		if got := Classify(c.kind, "v", c.err); got != c.want {
			t.Errorf("%s: Classify = %+v, want %+v", c.name, got, c.want)
		}
	}
}
