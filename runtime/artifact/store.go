// Package artifact is a node's content-addressed store of artifacts on local disk: blobs
// named by their sha256 digest, and for bundle artifacts the unpacked tree that executors
// read.
//
// Layout under the store's directory:
//
//	blobs/sha256/<hex>   the artifact's bytes, read-only, written once by rename
//	unpacked/<hex>/      the artifact unpacked by the store's unpack function, made by rename
//	tmp/                 partial writes; emptied by Open
//
// Every digest that comes in from outside is checked ("sha256:" and 64 lowercase hex
// digits) before it becomes part of a path. Writes are atomic (temporary file, fsync,
// rename, fsync of the directory), so a crash leaves either the whole artifact or none.
// The package imports nothing of v9's: how to unpack a bundle is given to Open. One Store
// owns its directory; two Stores must not share one.
package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Errors the store returns; test them with errors.Is.
var (
	// ErrBadDigest: a digest string is not "sha256:" followed by 64 lowercase hex digits.
	ErrBadDigest = errors.New("bad digest")
	// ErrNotFound: the store has no artifact with that digest.
	ErrNotFound = errors.New("artifact not found")
	// ErrDigestMismatch: the bytes given to PutVerified do not have the digest promised.
	ErrDigestMismatch = errors.New("artifact digest mismatch")
	// ErrNoUnpack: Dir was called on a store opened without an unpack function.
	ErrNoUnpack = errors.New("artifact store has no unpack function")
)

// DigestPrefix starts every digest the store knows.
const DigestPrefix = "sha256:"

// UnpackFunc extracts the artifact read from r into the directory dest (which exists and
// is empty). It must not write outside dest.
type UnpackFunc func(r io.Reader, dest string) error

// Store is a content-addressed artifact store. Its methods are safe for concurrent use.
type Store struct {
	dir    string
	unpack UnpackFunc

	mu      sync.Mutex
	flights map[string]*flight // unpacks in progress, by hex digest
}

// flight is one unpack that concurrent Dir callers wait for.
type flight struct {
	done chan struct{}
	path string
	err  error
}

// Open opens (creating if needed) the store in dir and removes partial writes left by an
// earlier process. unpack is used by Dir; it may be nil if Dir is never called.
func Open(dir string, unpack UnpackFunc) (*Store, error) {
	s := &Store{dir: dir, unpack: unpack, flights: map[string]*flight{}}
	for _, d := range []string{s.blobDir(), s.unpackedDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open artifact store: %w", err)
		}
	}
	ents, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return nil, fmt.Errorf("open artifact store: clean tmp: %w", err)
		}
	}
	return s, nil
}

func (s *Store) blobDir() string     { return filepath.Join(s.dir, "blobs", "sha256") }
func (s *Store) unpackedDir() string { return filepath.Join(s.dir, "unpacked") }
func (s *Store) tmpDir() string      { return filepath.Join(s.dir, "tmp") }

// ParseDigest checks a digest string and returns its hex part.
func ParseDigest(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, DigestPrefix)
	if !ok || !isHex64(hexPart) {
		shown := digest
		if len(shown) > 80 {
			shown = shown[:80] + "..."
		}
		return "", fmt.Errorf("%w %q: want %q and 64 lowercase hex digits", ErrBadDigest, shown, DigestPrefix)
	}
	return hexPart, nil
}

func isHex64(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Put stores what r yields and returns its digest. Storing bytes the store already has is
// harmless and returns the same digest.
func (s *Store) Put(r io.Reader) (digest string, err error) {
	return s.put(r, "")
}

// PutVerified stores what r yields only if its digest is want (as when fetching from a
// peer). On a mismatch nothing is kept and the error, matching ErrDigestMismatch, names
// both digests.
func (s *Store) PutVerified(r io.Reader, want string) error {
	if _, err := ParseDigest(want); err != nil {
		return fmt.Errorf("put artifact: %w", err)
	}
	_, err := s.put(r, want)
	return err
}

func (s *Store) put(r io.Reader, want string) (digest string, err error) {
	f, err := os.CreateTemp(s.tmpDir(), "put-*")
	if err != nil {
		return "", fmt.Errorf("put artifact: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		return "", fmt.Errorf("put artifact: %w", err)
	}
	if err := f.Chmod(0o444); err != nil {
		return "", fmt.Errorf("put artifact: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("put artifact: %w", err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return "", fmt.Errorf("put artifact: %w", err)
	}
	hexPart := hex.EncodeToString(h.Sum(nil))
	digest = DigestPrefix + hexPart
	if want != "" && digest != want {
		return "", fmt.Errorf("%w: want %s, got %s", ErrDigestMismatch, want, digest)
	}
	// Renaming over an existing blob replaces it with identical bytes; readers holding
	// the old file keep reading it. Concurrent Puts of the same bytes all succeed.
	if err := os.Rename(tmp, filepath.Join(s.blobDir(), hexPart)); err != nil {
		return "", fmt.Errorf("put artifact: %w", err)
	}
	if err := syncDir(s.blobDir()); err != nil {
		return "", fmt.Errorf("put artifact: %w", err)
	}
	return digest, nil
}

// Has reports whether the store holds the artifact. It is false for a bad digest.
func (s *Store) Has(digest string) bool {
	p, err := s.Path(digest)
	if err != nil {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Get opens the artifact's bytes and returns its size. The caller closes the reader.
func (s *Store) Get(digest string) (io.ReadCloser, int64, error) {
	p, err := s.Path(digest)
	if err != nil {
		return nil, 0, fmt.Errorf("get artifact: %w", err)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("get artifact %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get artifact: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("get artifact: %w", err)
	}
	return f, fi.Size(), nil
}

// Path is where the artifact's bytes are (or would be) on disk.
func (s *Store) Path(digest string) (string, error) {
	hexPart, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.blobDir(), hexPart), nil
}

// Dir returns the directory holding the artifact unpacked, unpacking it on first use.
// Concurrent callers share one unpack; the directory appears whole or not at all.
// Executors must treat it as read-only.
func (s *Store) Dir(digest string) (string, error) {
	hexPart, err := ParseDigest(digest)
	if err != nil {
		return "", fmt.Errorf("unpack artifact: %w", err)
	}
	final := filepath.Join(s.unpackedDir(), hexPart)
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	if s.unpack == nil {
		return "", ErrNoUnpack
	}

	s.mu.Lock()
	if f, ok := s.flights[hexPart]; ok {
		s.mu.Unlock()
		<-f.done
		return f.path, f.err
	}
	f := &flight{done: make(chan struct{})}
	s.flights[hexPart] = f
	s.mu.Unlock()

	f.path, f.err = s.unpackBlob(digest, hexPart, final)
	s.mu.Lock()
	delete(s.flights, hexPart)
	s.mu.Unlock()
	close(f.done)
	return f.path, f.err
}

func (s *Store) unpackBlob(digest, hexPart, final string) (_ string, err error) {
	// Another caller may have finished between the check in Dir and taking the flight.
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	r, _, err := s.Get(digest)
	if err != nil {
		return "", fmt.Errorf("unpack artifact: %w", err)
	}
	defer r.Close()
	tmp, err := os.MkdirTemp(s.tmpDir(), "unpack-"+hexPart[:12]+"-*")
	if err != nil {
		return "", fmt.Errorf("unpack artifact: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := s.unpack(r, tmp); err != nil {
		return "", fmt.Errorf("unpack artifact %s: %w", digest, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it 0700
		return "", fmt.Errorf("unpack artifact: %w", err)
	}
	if err := syncTree(tmp); err != nil {
		return "", fmt.Errorf("unpack artifact: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process may have won the race: its tree is as good as ours.
		if fi, serr := os.Stat(final); serr == nil && fi.IsDir() {
			os.RemoveAll(tmp)
			return final, nil
		}
		return "", fmt.Errorf("unpack artifact: %w", err)
	}
	if err := syncDir(s.unpackedDir()); err != nil {
		return "", fmt.Errorf("unpack artifact: %w", err)
	}
	return final, nil
}

// Delete removes the artifact and its unpacked tree. Deleting what is not there is not an
// error.
func (s *Store) Delete(digest string) error {
	hexPart, err := ParseDigest(digest)
	if err != nil {
		return fmt.Errorf("delete artifact: %w", err)
	}
	if err := s.removeBlob(hexPart); err != nil {
		return fmt.Errorf("delete artifact: %w", err)
	}
	if err := s.removeUnpacked(hexPart); err != nil {
		return fmt.Errorf("delete artifact: %w", err)
	}
	return nil
}

// removeBlob removes a file of blobs/ (an artifact's bytes), if it is there.
func (s *Store) removeBlob(name string) error {
	if err := os.Remove(filepath.Join(s.blobDir(), name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// removeUnpacked moves an unpacked tree (or any entry of unpacked/) out of sight in one
// rename, then removes it.
func (s *Store) removeUnpacked(name string) error {
	trash, err := os.MkdirTemp(s.tmpDir(), "trash-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(trash)
	err = os.Rename(filepath.Join(s.unpackedDir(), name), filepath.Join(trash, "x"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// GC removes every artifact, unpacked tree and stray file whose digest is not in keep
// (keys are digests, "sha256:<hex>") and returns the digests it removed, sorted. An
// artifact Put while GC runs may be removed if keep does not name it: callers put keep
// together with what they are fetching.
func (s *Store) GC(keep map[string]bool) (removed []string, err error) {
	gone := map[string]bool{}
	var errs []error
	for _, part := range []struct {
		dir    string
		remove func(name string) error
	}{{s.blobDir(), s.removeBlob}, {s.unpackedDir(), s.removeUnpacked}} {
		entries, err := os.ReadDir(part.dir)
		if err != nil {
			return slices.Sorted(maps.Keys(gone)), fmt.Errorf("gc artifacts: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if isHex64(name) && keep[DigestPrefix+name] {
				continue
			}
			if err := part.remove(name); err != nil {
				errs = append(errs, err)
			} else if isHex64(name) {
				gone[DigestPrefix+name] = true
			}
		}
	}
	removed = slices.Sorted(maps.Keys(gone))
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("gc artifacts: %w", err)
	}
	return removed, nil
}

// List returns the digests of the stored artifacts, sorted.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.blobDir())
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	var out []string
	for _, e := range ents {
		if isHex64(e.Name()) && e.Type().IsRegular() {
			out = append(out, DigestPrefix+e.Name())
		}
	}
	return out, nil // ReadDir sorts by name
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// syncTree flushes every file and directory under dir to disk, so that a tree renamed into
// place survives a crash whole.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil // links have nothing to flush; the directory entry is synced below
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
