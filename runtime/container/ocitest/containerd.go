package ocitest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
)

// EnvSocket names the environment variable that points tests at a running containerd's
// socket (scripts/containerd-test.sh start prints it).
const EnvSocket = "V9_TEST_CONTAINERD"

// ErrNoContainerd says that tests cannot get a containerd here; callers skip.
var ErrNoContainerd = errors.New("no containerd for tests")

// ForTestMain is Containerd for a package's TestMain: the socket, or else why the tests that
// need it skip (no containerd here, outside CI). Any other failure, and none under CI,
// ends the process with pkg named: a skipped test would hide a broken setup. stop is never
// nil.
func ForTestMain(pkg string) (socket, skip string, stop func()) {
	socket, stop, err := Containerd()
	switch {
	case err == nil:
		return socket, "", stop
	case errors.Is(err, ErrNoContainerd) && os.Getenv("CI") == "":
		return "", err.Error(), func() {}
	}
	fmt.Fprintln(os.Stderr, pkg+" tests:", err)
	os.Exit(1)
	return "", "", nil
}

// Containerd finds a containerd for a test binary, for TestMain: the socket in
// $V9_TEST_CONTAINERD when set, or else, when running as root with containerd and runc
// installed, a private daemon started in a new temporary directory by
// scripts/containerd-test.sh. stop ends what Containerd started (nothing for the
// environment's daemon) and removes its directory. An error wrapping ErrNoContainerd means
// neither is possible here; under CI (CI=true) callers should fail rather than skip.
func Containerd() (socket string, stop func(), err error) {
	if s := os.Getenv(EnvSocket); s != "" {
		if _, err := os.Stat(s); err != nil {
			return "", nil, fmt.Errorf("%s=%s: %w", EnvSocket, s, err)
		}
		return s, func() {}, nil
	}
	if os.Geteuid() != 0 {
		return "", nil, fmt.Errorf("%w: %s is not set and tests do not run as root", ErrNoContainerd, EnvSocket)
	}
	for _, bin := range []string{"containerd", "runc", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			return "", nil, fmt.Errorf("%w: %s is not set and %s is not installed (apt-get install containerd runc)", ErrNoContainerd, EnvSocket, bin)
		}
	}
	script, err := scriptPath()
	if err != nil {
		return "", nil, err
	}
	// A short directory: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "v9ctr")
	if err != nil {
		return "", nil, err
	}
	stop = func() {
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "ocitest: stop containerd: %v\n%s", err, out)
		}
		os.RemoveAll(dir)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(script, "start", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("start containerd: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "export "+EnvSocket+"="); ok {
			return s, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("start containerd: no socket in the script's output %q", out)
}

// scriptPath finds scripts/containerd-test.sh from this file's place in the repository.
func scriptPath() (string, error) {
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		return "", errors.New("ocitest: cannot locate the repository")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "containerd-test.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("ocitest: %w", err)
	}
	return p, nil
}
