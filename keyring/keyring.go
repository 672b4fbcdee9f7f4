package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/renameio/v2"
)

// KeySize is the size of a root key: AES-256.
const KeySize = 32

// ErrNoKey reports that the keyring has no active key to seal with, or lacks the key a
// ciphertext names.
var ErrNoKey = errors.New("keyring: key not held by this node")

// ErrUnreadable reports a ciphertext that does not open: tampered, truncated, or sealed for
// other additional data.
var ErrUnreadable = errors.New("keyring: ciphertext does not authenticate (tampered or corrupt)")

// Key is one root key.
type Key struct {
	ID      string    `json:"id"`
	Key     []byte    `json:"key"`
	Created time.Time `json:"created"`
}

// Sealed is a value sealed by Seal: the key id and nonce travel with it.
type Sealed struct {
	KeyID      string
	Nonce      []byte
	Ciphertext []byte
}

// Keyring is a node's set of root keys, saved to a file on every change.
type Keyring struct {
	path string

	mu      sync.RWMutex
	keys    map[string]Key
	active  string          // the newest key: Seal uses it
	removed map[string]bool // ids of removed keys (tombstones): never taken again
}

type file struct {
	Active  string   `json:"active"`
	Keys    []Key    `json:"keys"`
	Removed []string `json:"removed,omitempty"`
}

// Set is what a node shares of its keyring with another node: its keys, its active key's
// id and the ids of the keys removed from the cluster.
type Set struct {
	Keys    []Key
	Active  string
	Removed []string
}

// newer reports whether a is newer than b. Created is a hybrid logical clock (a new key's
// is later than every key its node held, whatever that node's wall clock says: see
// NewActive), the id breaks ties: every node orders the same keys the same way.
func newer(a, b Key) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	return a.ID > b.ID
}

// Open loads the keyring kept at path, or returns an empty one when the file does not exist.
func Open(path string) (*Keyring, error) {
	k := &Keyring{path: path, keys: map[string]Key{}, removed: map[string]bool{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("keyring: %s: %w", path, err)
	}
	for _, key := range f.Keys {
		if len(key.Key) != KeySize || key.ID == "" {
			return nil, fmt.Errorf("keyring: %s holds a malformed key", path)
		}
		k.keys[key.ID] = key
	}
	for _, id := range f.Removed {
		k.removed[id] = true
	}
	if _, ok := k.keys[f.Active]; f.Active != "" && !ok {
		return nil, fmt.Errorf("keyring: %s names an active key it does not hold", path)
	}
	k.active = f.Active
	return k, nil
}

// Generate makes a new root key from crypto/rand.
func Generate(now time.Time) (Key, error) {
	key := Key{Key: make([]byte, KeySize), Created: now.UTC()}
	id := make([]byte, 8)
	if _, err := rand.Read(key.Key); err != nil {
		return Key{}, err
	}
	if _, err := rand.Read(id); err != nil {
		return Key{}, err
	}
	key.ID = hex.EncodeToString(id)
	return key, nil
}

// Active returns the id of the key Seal uses, "" when the keyring is empty.
func (k *Keyring) Active() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.active
}

// Has reports whether the keyring holds key id.
func (k *Keyring) Has(id string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.keys[id]
	return ok
}

// Keys returns copies of every key and the active key's id.
func (k *Keyring) Keys() ([]Key, string) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]Key, 0, len(k.keys))
	for _, key := range k.keys {
		key.Key = append([]byte(nil), key.Key...)
		out = append(out, key)
	}
	return out, k.active
}

// Add stores keys (those it already holds, and removed ones, are left as they are) and
// makes active the active key, if given, held and newer than the current one; it saves the
// file when anything changed.
func (k *Keyring) Add(keys []Key, active string) error {
	return k.Merge(Set{Keys: keys, Active: active})
}

// Merge takes what a peer shares: it adds the peer's keys and active key as Add does, then
// forgets the keys the peer knows were removed (never the active key).
func (k *Keyring) Merge(s Set) error {
	for _, key := range s.Keys {
		if len(key.Key) != KeySize || key.ID == "" {
			return errors.New("keyring: malformed key")
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	changed := false
	for _, key := range s.Keys {
		if _, ok := k.keys[key.ID]; !ok && !k.removed[key.ID] && !slices.Contains(s.Removed, key.ID) {
			key.Key = append([]byte(nil), key.Key...)
			k.keys[key.ID] = key
			changed = true
		}
	}
	// The active key only moves forward: a node that pulls from a peer that missed a
	// rotation keeps the newer key it has.
	if a, ok := k.keys[s.Active]; ok && s.Active != k.active && (k.active == "" || newer(a, k.keys[k.active])) {
		k.active, changed = s.Active, true
	}
	for _, id := range s.Removed {
		if id != "" && id != k.active && !k.removed[id] {
			k.removed[id] = true
			delete(k.keys, id)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return k.saveLocked()
}

// Share returns copies of every key, the active key's id and the removed keys' ids.
func (k *Keyring) Share() Set {
	k.mu.RLock()
	defer k.mu.RUnlock()
	s := Set{Active: k.active}
	for _, key := range k.keys {
		key.Key = append([]byte(nil), key.Key...)
		s.Keys = append(s.Keys, key)
	}
	for id := range k.removed {
		s.Removed = append(s.Removed, id)
	}
	sort.Strings(s.Removed)
	return s
}

// NewActive makes a new key from crypto/rand and makes it the active key. Its Created is
// now, or just after the newest key held when that is later (a node whose clock is behind
// the node that made the current key): so the new key is the newest on every node that
// compares them, and the active key everywhere once they have it.
func (k *Keyring) NewActive(now time.Time) (Key, error) {
	key, err := Generate(now)
	if err != nil {
		return Key{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, h := range k.keys {
		if !key.Created.After(h.Created) {
			key.Created = h.Created.Add(time.Millisecond)
		}
	}
	k.keys[key.ID] = key
	prev := k.active
	k.active = key.ID
	if err := k.saveLocked(); err != nil {
		delete(k.keys, key.ID)
		k.active = prev
		return Key{}, err
	}
	return key, nil
}

func (k *Keyring) saveLocked() error {
	f := file{Active: k.active}
	for _, key := range k.keys {
		f.Keys = append(f.Keys, key)
	}
	for id := range k.removed {
		f.Removed = append(f.Removed, id)
	}
	sort.Strings(f.Removed)
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := renameio.WriteFile(k.path, b, 0o600); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	return nil
}

func aead(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Seal encrypts plaintext with the active key; aad binds it to where it is stored.
func (k *Keyring) Seal(plaintext, aad []byte) (Sealed, error) {
	k.mu.RLock()
	key, ok := k.keys[k.active]
	k.mu.RUnlock()
	if !ok {
		return Sealed{}, ErrNoKey
	}
	g, err := aead(key.Key)
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, err
	}
	return Sealed{KeyID: key.ID, Nonce: nonce, Ciphertext: g.Seal(nil, nonce, plaintext, aad)}, nil
}

// Open decrypts s. It returns ErrNoKey (wrapped) when the key is not held here and
// ErrUnreadable when the ciphertext does not authenticate; never unauthenticated bytes.
func (k *Keyring) Open(s Sealed, aad []byte) ([]byte, error) {
	k.mu.RLock()
	key, ok := k.keys[s.KeyID]
	k.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrNoKey, s.KeyID)
	}
	g, err := aead(key.Key)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != g.NonceSize() {
		return nil, ErrUnreadable
	}
	out, err := g.Open(nil, s.Nonce, s.Ciphertext, aad)
	if err != nil {
		return nil, ErrUnreadable
	}
	return out, nil
}

// ErrActive refuses to remove the key Seal uses.
var ErrActive = errors.New("keyring: the active key cannot be removed (rotate first)")

// Remove forgets key id (never the active one) and keeps its id, so that the key is not
// taken again from a node that missed the removal (Merge), and saves the file. Removing a
// key not held is no error: its id is kept all the same.
func (k *Keyring) Remove(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if id == k.active {
		return ErrActive
	}
	if id == "" {
		return errors.New("keyring: no key id")
	}
	_, held := k.keys[id]
	if !held && k.removed[id] {
		return nil
	}
	delete(k.keys, id)
	k.removed[id] = true
	return k.saveLocked()
}
