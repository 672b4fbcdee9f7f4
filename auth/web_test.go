package auth

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzSafeNext: wherever the sign-in is told to return, it stays on this origin.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/components/x?y=1", "//evil.example", "/\\evil", "https://evil.example", "", "/auth/signout", "\n/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := SafeNext(next)
		if got == "" || got[0] != '/' || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") || strings.ContainsAny(got, "\r\n\t") {
			t.Fatalf("SafeNext(%q) = %q leaves the origin", next, got)
		}
	})
}

// FuzzFlowCookie: any state cookie a browser sends parses or is refused, and what it gives
// back is a safe place to return to.
func FuzzFlowCookie(f *testing.F) {
	for _, s := range []string{"a.b.Lw", "a.b.Ly9ldmls", "..", "a.b", "a.b.!!", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := &http.Request{Header: http.Header{"Cookie": {PlainStateCookie + "=" + v}}}
		state, verifier, next, ok := flowCookie(r)
		if ok && (state == "" || verifier == "" || SafeNext(next) != next) {
			t.Fatalf("flowCookie(%q) = %q %q %q", v, state, verifier, next)
		}
	})
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/components/a?b=1": "/components/a?b=1", "//evil": "/", "https://evil": "/", "/\\evil": "/", "": "/"} {
		if got := SafeNext(in); got != want {
			t.Errorf("SafeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
