package container

import (
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// The OCI runtime the runc shim runs, unless Config.RuntimeBinary names one. crun (written
// in C) creates and starts a container faster than runc (Go, which re-executes itself to
// enter the namespaces): the executor's cold start, Start → first 200, measured 148 and
// 161 ms with crun against 218 and 197 ms with runc (BenchmarkColdStart, 8 starts each, a
// hybrid host with its cgroup v2 controllers masked). So crun is the default wherever it can
// run, runc elsewhere.
//
// crun cannot run on a hybrid host (cgroup v1 controllers, with a cgroup v2 hierarchy at
// /sys/fs/cgroup/unified) whose v2 hierarchy has any controller: crun 1.8.1 checks
// /sys/fs/cgroup/unified/cgroup.controllers before it chooses a cgroup manager and stops
// with "cgroups in hybrid mode not supported, drop all controllers from cgroupv2", so
// neither its --systemd-cgroup/--cgroup-manager options nor the shim's can avoid it. A
// controller no v1 hierarchy is mounted for stays in v2 (systemd mounts them all; some VM
// inits leave hugetlb out): such a host keeps runc until that controller is mounted as v1,
// or the host moves to cgroup v2 only.

const crunBinary = "crun"

// cgroupMode is how a host lays its cgroups out.
type cgroupMode int

const (
	cgroupNone    cgroupMode = iota // nothing at /sys/fs/cgroup
	cgroupLegacy                    // v1 only
	cgroupHybrid                    // v1 controllers, and v2 at /sys/fs/cgroup/unified
	cgroupUnified                   // v2 only
)

// hostCgroups returns this host's cgroup mode, and the controllers of its v2 hierarchy.
func hostCgroups() (cgroupMode, string) {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) != nil {
		return cgroupNone, ""
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return cgroupUnified, ""
	}
	if unix.Statfs("/sys/fs/cgroup/unified", &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return cgroupLegacy, ""
	}
	controllers, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	return cgroupHybrid, string(controllers)
}

// defaultRuntime returns the runtime binary for the shim ("" for its own, runc) and why.
func defaultRuntime() (binary, why string) {
	if _, err := exec.LookPath(crunBinary); err != nil {
		return "", "crun is not installed"
	}
	if ok, why := crunAccepts(hostCgroups()); !ok {
		return "", why
	}
	return crunBinary, "crun is installed and accepts this host's cgroups"
}

// crunAccepts reports whether crun runs on a host in cgroup mode whose v2 hierarchy has the
// controllers listed in unified; if not, why.
func crunAccepts(mode cgroupMode, unified string) (bool, string) {
	switch mode {
	case cgroupUnified, cgroupLegacy:
		return true, ""
	case cgroupHybrid:
		if c := strings.TrimSpace(unified); c != "" {
			return false, "crun refuses hybrid cgroups whose v2 hierarchy has controllers (here: " + c + ")"
		}
		return true, ""
	default:
		return false, "no cgroup hierarchy at /sys/fs/cgroup"
	}
}
