package proxy

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

var testPrivate = Private{Cookies: []string{"__Host-v9_session", "v9_session"}, BearerPrefix: "v9s_"}

// TestPrivateCredentialsNeverReachAComponent: the console's session cookie and a v9 bearer
// token are taken off a request before it reaches a component here or on another node;
// the component's own cookies and Authorization schemes pass as they came.
func TestPrivateCredentialsNeverReachAComponent(t *testing.T) {
	var got http.Header
	capture := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() })
	remote := httptest.NewServer(capture)
	defer remote.Close()
	for _, where := range []string{"local", "remote"} {
		target := Target{Found: true, InProcess: true, Local: []http.Handler{capture}}
		if where == "remote" {
			target = Target{Found: true, Remote: []string{strings.TrimPrefix(remote.URL, "http://")}}
		}
		p := New(Config{NodeID: "n1", Router: table{"app": target}, Private: testPrivate})
		for _, c := range []struct {
			cookies           []string
			auth              string
			wantCookie, wantA []string
		}{
			{[]string{"a=1; v9_session=v9s_victim; b=2"}, "Bearer v9s_victim", []string{"a=1; b=2"}, nil},
			{[]string{"__Host-v9_session=v9s_victim"}, "bearer   v9s_victim", nil, nil},
			{[]string{"v9_session=v9s_x", "theirs=1"}, "Bearer theirs", []string{"theirs=1"}, []string{"Bearer theirs"}},
			{[]string{"my_v9_session_pref=dark"}, "Basic dXNlcjpwdw==", []string{"my_v9_session_pref=dark"}, []string{"Basic dXNlcjpwdw=="}},
		} {
			r := httptest.NewRequest("GET", "http://127.0.0.1:8080/app/", nil)
			r.Header["Cookie"] = c.cookies
			r.Header.Set("Authorization", c.auth)
			got = nil
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, r)
			if rec.Code != 200 || got == nil {
				t.Fatalf("%s: %d, reached: %v", where, rec.Code, got != nil)
			}
			if !slices.Equal(got["Cookie"], c.wantCookie) || !slices.Equal(got["Authorization"], c.wantA) {
				t.Errorf("%s: %q with %q reached the component as %q and %q", where, c.cookies, c.auth, got["Cookie"], got["Authorization"])
			}
		}
	}
}

// FuzzPrivateStrip: whatever Cookie lines a client sends, none of v9's cookies is left and
// every other cookie part is kept, in order.
func FuzzPrivateStrip(f *testing.F) {
	f.Add("a=1; v9_session=v9s_x; b=2", "__Host-v9_session=y")
	f.Add(";;v9_session;", "")
	f.Add(" v9_session = x ; c", "v9_session=")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		h := http.Header{"Cookie": {line1, line2}}
		testPrivate.strip(h)
		var want []string
		for _, line := range []string{line1, line2} {
			for part := range strings.SplitSeq(line, ";") {
				name, _, _ := strings.Cut(part, "=")
				if p := strings.TrimSpace(part); p != "" && !testPrivate.isPrivate(strings.TrimSpace(name)) {
					want = append(want, p)
				}
			}
		}
		var got []string
		for _, line := range h["Cookie"] {
			for part := range strings.SplitSeq(line, ";") {
				name, _, _ := strings.Cut(part, "=")
				if testPrivate.isPrivate(strings.TrimSpace(name)) {
					t.Fatalf("%q %q: %q left", line1, line2, part)
				}
				if p := strings.TrimSpace(part); p != "" {
					got = append(got, p)
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q %q: kept %q, want %q", line1, line2, got, want)
		}
	})
}
