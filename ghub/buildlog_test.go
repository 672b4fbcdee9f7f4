package ghub

import (
	"fmt"
	"strings"
	"testing"
)

// A build's output is shown live line by line as each completes (a line split across
// writes is one line; an overlong one is cut), and kept whole for the deployment record.
func TestBuildLogShowsLinesLive(t *testing.T) {
	var live []string
	l := &buildLog{live: func(s string) { live = append(live, s) }}
	l.printf("v9 build of %s", "hello")
	fmt.Fprint(l, "compiling ")
	if len(live) != 1 {
		t.Fatalf("an incomplete line was shown: %q", live)
	}
	fmt.Fprint(l, "main.go\nok\n")
	long := strings.Repeat("x", maxLiveLine+10)
	fmt.Fprintln(l, long)
	want := []string{"v9 build of hello", "compiling main.go", "ok", long[:maxLiveLine]}
	if fmt.Sprint(live) != fmt.Sprint(want) {
		t.Fatalf("live lines %q, want %q", live, want)
	}
	if !strings.HasPrefix(l.String(), "v9 build of hello\ncompiling main.go\nok\n"+long) {
		t.Fatalf("record %q", l.String()[:60])
	}
}
