package node

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/velocity9/v9/runtime/container/ocitest"
)

// testContainerd is the private containerd this package's tests run containers with;
// noContainerd says why there is none (tests that need it skip, except under CI).
var testContainerd, noContainerd string

func TestMain(m *testing.M) {
	sock, stop, err := ocitest.Containerd()
	switch {
	case err == nil:
		testContainerd = sock
	case errors.Is(err, ocitest.ErrNoContainerd) && os.Getenv("CI") == "":
		noContainerd = err.Error()
	default:
		// Under CI containerd must be there: a skipped test would hide a broken setup.
		fmt.Fprintln(os.Stderr, "node tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}

func needContainerd(t testing.TB) {
	t.Helper()
	if testContainerd == "" {
		t.Skip(noContainerd)
	}
}
