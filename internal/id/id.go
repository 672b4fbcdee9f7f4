// Package id makes the random ids the leader and the API stamp into commands before they
// enter the Raft log (Apply itself never draws randomness).
package id

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random 64-bit id in hex.
func New() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
