package container

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// containerID names the container of a placement on this node. containerd ids are
// [A-Za-z0-9]+ joined by single [._-] and at most 76 bytes long: the readable parts are
// cleaned and cut, and a hash of the exact node and placement ids keeps them unique.
func containerID(node, placement string) string {
	sum := sha256.Sum256([]byte(node + "\x00" + placement))
	return "v9-" + cleanID(node, 16) + "-" + cleanID(placement, 40) + "-" + hex.EncodeToString(sum[:5])
}

// cleanID keeps letters and digits, turns every run of anything else into one '-', and cuts
// the result to at most n bytes. It never returns an empty string.
func cleanID(s string, n int) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= n {
			break
		}
	}
	out := strings.TrimRight(b.String()[:min(b.Len(), n)], "-")
	if out == "" {
		return "x"
	}
	return out
}
