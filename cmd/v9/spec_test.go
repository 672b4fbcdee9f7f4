package main

import (
	"errors"
	"testing"

	"connectrpc.com/connect"
	"github.com/spf13/pflag"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func TestFormatMemory(t *testing.T) {
	for b, want := range map[uint64]string{0: "default", 1 << 20: "1Mi", 1 << 40: "1Ti"} {
		if got := formatMemory(b); got != want {
			t.Errorf("formatMemory(%d) = %q, want %q", b, got, want)
		}
	}
}

// parseSpecFlags runs specFlags over args as a command line would.
func parseSpecFlags(t *testing.T, rt statev1.Runtime, spec *statev1.ComponentSpec, args ...string) (*pflag.FlagSet, error) {
	t.Helper()
	var f specFlags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs, f.apply(fs, rt, spec)
}

func TestSpecFlagsChangeOnlyWhatIsGiven(t *testing.T) {
	spec := &statev1.ComponentSpec{
		Env: map[string]string{"A": "1", "B": "2"}, ScaleMin: 1, ScaleMax: 1, Concurrency: 10,
		MemoryBytes: 64 << 20, TimeoutMs: 1000, Wasm: &statev1.WasmSpec{Module: "m.wasm"},
	}
	_, err := parseSpecFlags(t, statev1.Runtime_RUNTIME_WASM, spec,
		"--max", "4", "--env", "C=x=y", "--env", "A=one", "--unset-env", "B", "--wasm-build", "go")
	if err != nil {
		t.Fatal(err)
	}
	want := &statev1.ComponentSpec{
		Env: map[string]string{"A": "one", "C": "x=y"}, ScaleMin: 1, ScaleMax: 4, Concurrency: 10,
		MemoryBytes: 64 << 20, TimeoutMs: 1000, Wasm: &statev1.WasmSpec{Module: "m.wasm", Build: "go"},
	}
	if spec.String() != want.String() {
		t.Fatalf("spec = %v\nwant   %v", spec, want)
	}
}

func TestDefaultScale(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		min, max uint32
	}{
		{nil, 1, 1},
		{[]string{"--max", "5"}, 1, 5},
		{[]string{"--min", "0"}, 0, 1},
		{[]string{"--min", "3"}, 3, 3},
		{[]string{"--min", "0", "--max", "4"}, 0, 4},
	} {
		spec := &statev1.ComponentSpec{}
		fs, err := parseSpecFlags(t, statev1.Runtime_RUNTIME_WASM, spec, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		defaultScale(fs, spec)
		if spec.ScaleMin != tc.min || spec.ScaleMax != tc.max {
			t.Errorf("%v: min/max %d/%d, want %d/%d", tc.args, spec.ScaleMin, spec.ScaleMax, tc.min, tc.max)
		}
	}
}

func TestDescribeError(t *testing.T) {
	for _, tc := range []struct {
		err       error
		msg, hint string
	}{
		{connect.NewError(connect.CodeNotFound, errors.New(`component "x": not found`)), `component "x": not found`, ""},
		{connect.NewError(connect.CodeInvalidArgument, errors.New("invalid: bad name")), "invalid: bad name", ""},
		{connect.NewError(connect.CodeFailedPrecondition, errors.New("node is draining")), "node is draining (failed precondition)", ""},
		{errors.New("plain"), "plain", ""},
	} {
		msg, hint := describeError(tc.err, "127.0.0.1:7900")
		if msg != tc.msg || hint != tc.hint {
			t.Errorf("describeError(%v) = %q, %q; want %q, %q", tc.err, msg, hint, tc.msg, tc.hint)
		}
	}
}
