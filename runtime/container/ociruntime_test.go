package container

import "testing"

// TestCrunAccepts: crun is the default only on hosts whose cgroups it accepts; a hybrid
// host with a controller left in cgroup v2 (this one: hugetlb) keeps runc.
func TestCrunAccepts(t *testing.T) {
	for _, c := range []struct {
		mode    cgroupMode
		unified string
		want    bool
	}{
		{cgroupUnified, "", true},
		{cgroupLegacy, "", true},
		{cgroupHybrid, "\n", true},
		{cgroupHybrid, "hugetlb\n", false},
		{cgroupNone, "", false},
	} {
		if ok, why := crunAccepts(c.mode, c.unified); ok != c.want || (!ok && why == "") {
			t.Errorf("crunAccepts(%d, %q) = %v, %q; want %v", c.mode, c.unified, ok, why, c.want)
		}
	}
	bin, why := defaultRuntime()
	t.Logf("this host: runtime %q (%s)", bin, why)
}
