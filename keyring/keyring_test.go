package keyring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func newRing(t *testing.T) (*Keyring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring.json")
	k, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Add([]Key{key}, key.ID); err != nil {
		t.Fatal(err)
	}
	return k, path
}

func TestSealOpenRoundTripAndPersist(t *testing.T) {
	k, path := newRing(t)
	s, err := k.Seal([]byte("hunter2"), []byte("c1/DB_PASSWORD"))
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID != k.Active() || len(s.Nonce) != 12 || bytes.Contains(s.Ciphertext, []byte("hunter2")) {
		t.Fatalf("sealed = %+v", s)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := Open(path) // a restart reads the same keys
	if err != nil {
		t.Fatal(err)
	}
	got, err := k2.Open(s, []byte("c1/DB_PASSWORD"))
	if err != nil || string(got) != "hunter2" {
		t.Fatalf("open = %q, %v", got, err)
	}
}

func TestTamperedOrMisplacedIsUnreadable(t *testing.T) {
	k, _ := newRing(t)
	s, err := k.Seal([]byte("hunter2"), []byte("c1/A"))
	if err != nil {
		t.Fatal(err)
	}
	bad := s
	bad.Ciphertext = append([]byte(nil), s.Ciphertext...)
	bad.Ciphertext[0] ^= 1
	if _, err := k.Open(bad, []byte("c1/A")); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("tampered: %v, want ErrUnreadable", err)
	}
	if _, err := k.Open(s, []byte("c2/A")); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("moved to another component: %v, want ErrUnreadable", err)
	}
	short := s
	short.Nonce = s.Nonce[:4]
	if _, err := k.Open(short, []byte("c1/A")); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("short nonce: %v, want ErrUnreadable", err)
	}
	unknown := s
	unknown.KeyID = "nope"
	if _, err := k.Open(unknown, []byte("c1/A")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("unknown key: %v, want ErrNoKey", err)
	}
}

func TestEmptyKeyringCannotSeal(t *testing.T) {
	k, err := Open(filepath.Join(t.TempDir(), "k.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Seal([]byte("x"), nil); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal on empty keyring: %v", err)
	}
}

func TestAddFromPeerKeepsOldKeys(t *testing.T) {
	a, _ := newRing(t)
	s, _ := a.Seal([]byte("v"), nil)
	b, err := Open(filepath.Join(t.TempDir(), "k.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys, active := a.Keys()
	if err := b.Add(keys, active); err != nil {
		t.Fatal(err)
	}
	newer, _ := Generate(time.Now())
	if err := b.Add([]Key{newer}, newer.ID); err != nil {
		t.Fatal(err)
	}
	if b.Active() != newer.ID {
		t.Fatalf("active = %s", b.Active())
	}
	if got, err := b.Open(s, nil); err != nil || string(got) != "v" {
		t.Fatalf("old ciphertext after rotation: %q %v", got, err)
	}
	if err := b.Add([]Key{{ID: "x", Key: []byte("short")}}, ""); err == nil {
		t.Fatal("malformed key accepted")
	}
}
