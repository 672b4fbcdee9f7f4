package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// SecretPrefix starts every token secret, so that a leaked one is recognisable (secret
// scanners) and a token is never mistaken for an accessor id.
const SecretPrefix = "v9s_"

// MinSecretLen bounds secrets chosen by the caller (v9 dev, tests).
const MinSecretLen = 32

// NewSecret returns a fresh token secret: 32 random bytes.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// NewAccessorID returns a fresh public token id.
func NewAccessorID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Hash is what the state keeps of a secret: its SHA-256. A secret has 256 random bits, so
// a plain hash is enough (no password stretching needed).
func Hash(secret string) []byte {
	s := sha256.Sum256([]byte(secret))
	return s[:]
}

// CheckChosenSecret refuses a caller-chosen secret too short to be safe.
func CheckChosenSecret(s string) error {
	if len(s) < MinSecretLen {
		return errors.New("a chosen token secret needs at least 32 characters")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return errors.New("a token secret cannot hold white space")
	}
	return nil
}

// BearerSecret extracts the secret from an Authorization header value ("" if none).
func BearerSecret(header string) string {
	const p = "bearer "
	if len(header) > len(p) && strings.EqualFold(header[:len(p)], p) {
		return strings.TrimSpace(header[len(p):])
	}
	return ""
}
