package proxy

import (
	"net/http"
	"strings"
)

// Private names what of a request is v9's own and never reaches a component: a browser
// signed in to the console sends its session cookie to every port of the host (cookies do
// not tell ports apart), so to http://host:proxy/<name>/ too, and a client may send its v9
// token along; a component that read either could act on v9's API as that user.
type Private struct {
	// Cookies are the names of v9's own cookies (the console's session).
	Cookies []string
	// BearerPrefix marks v9's own secrets: an Authorization header "Bearer <prefix>…" is
	// removed. Other Authorization headers (a component's own scheme) pass.
	BearerPrefix string
}

// strip removes v9's own credentials from h, in place.
func (p Private) strip(h http.Header) {
	if p.BearerPrefix != "" {
		if a := h.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") &&
			strings.HasPrefix(strings.TrimSpace(a[7:]), p.BearerPrefix) {
			h.Del("Authorization")
		}
	}
	cookies := h["Cookie"]
	if len(cookies) == 0 || len(p.Cookies) == 0 {
		return
	}
	var kept []string
	changed := false
	for _, line := range cookies {
		if !p.mentions(line) {
			kept = append(kept, line)
			continue
		}
		var parts []string
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(part, "=")
			if p.isPrivate(strings.TrimSpace(name)) {
				changed = true
				continue
			}
			if part = strings.TrimSpace(part); part != "" {
				parts = append(parts, part)
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	switch {
	case !changed:
	case len(kept) == 0:
		h.Del("Cookie")
	default:
		h["Cookie"] = kept
	}
}

// mentions reports whether a Cookie header line may hold a private cookie: the common line
// that names none is passed on without being split.
func (p Private) mentions(line string) bool {
	for _, c := range p.Cookies {
		if strings.Contains(line, c) {
			return true
		}
	}
	return false
}

func (p Private) isPrivate(name string) bool {
	for _, c := range p.Cookies {
		if name == c {
			return true
		}
	}
	return false
}
