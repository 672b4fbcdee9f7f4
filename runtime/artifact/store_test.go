package artifact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// copyUnpack is a stand-in for a real unpacker: it writes the blob to dest/blob.
func copyUnpack(calls *atomic.Int32) UnpackFunc {
	return func(r io.Reader, dest string) error {
		if calls != nil {
			calls.Add(1)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dest, "sub"), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dest, "sub", "blob"), b, 0o644)
	}
}

func openStore(t *testing.T, unpack UnpackFunc) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, unpack)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s holds %v", dir, ents)
	}
}

func TestPutGet(t *testing.T) {
	s, dir := openStore(t, nil)
	content := []byte("hello artifact")
	d, err := s.Put(bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if d != digestOf(content) {
		t.Fatalf("digest %s, want %s", d, digestOf(content))
	}
	if !s.Has(d) {
		t.Fatal("Has is false after Put")
	}
	r, size, err := s.Get(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, content) || size != int64(len(content)) {
		t.Fatalf("Get: %q size %d, %v", got, size, err)
	}
	p, err := s.Path(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, DigestPrefix)); p != want {
		t.Fatalf("path %s, want %s", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("blob mode %v, %v", fi.Mode(), err)
	}
	// Again: same digest, still one blob.
	if d2, err := s.Put(bytes.NewReader(content)); err != nil || d2 != d {
		t.Fatalf("second Put: %s, %v", d2, err)
	}
	empty, err := s.Put(strings.NewReader(""))
	if err != nil || empty != digestOf(nil) {
		t.Fatalf("empty Put: %s, %v", empty, err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{d, empty}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("List %v, want %v", list, want)
	}
	assertEmptyDir(t, filepath.Join(dir, "tmp"))

	missing := digestOf([]byte("never stored"))
	if s.Has(missing) {
		t.Fatal("Has is true for a missing artifact")
	}
	if _, _, err := s.Get(missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
}

func TestPutVerified(t *testing.T) {
	s, dir := openStore(t, nil)
	content := []byte("from a peer")
	want := digestOf(content)
	if err := s.PutVerified(bytes.NewReader(content), want); err != nil {
		t.Fatal(err)
	}
	if !s.Has(want) {
		t.Fatal("verified artifact not stored")
	}

	tampered := []byte("from a peer, tampered")
	other := digestOf([]byte("what we asked for"))
	err := s.PutVerified(bytes.NewReader(tampered), other)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "want "+other) || !strings.Contains(msg, "got "+digestOf(tampered)) {
		t.Fatalf("mismatch error does not name both digests: %s", msg)
	}
	if s.Has(other) || s.Has(digestOf(tampered)) {
		t.Fatal("a mismatched blob was kept")
	}
	if list, _ := s.List(); !reflect.DeepEqual(list, []string{want}) {
		t.Fatalf("List %v", list)
	}
	assertEmptyDir(t, filepath.Join(dir, "tmp"))
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestPutReaderError(t *testing.T) {
	s, dir := openStore(t, nil)
	_, err := s.Put(&failingReader{n: 100000})
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("error %v", err)
	}
	if err := s.PutVerified(&failingReader{n: 10}, digestOf(nil)); err == nil {
		t.Fatal("PutVerified of a failing reader succeeded")
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("List %v", list)
	}
	assertEmptyDir(t, filepath.Join(dir, "tmp"))
}

// concurrently calls f from n goroutines at once and wants every call to return want.
func concurrently(t *testing.T, n int, want string, f func() (string, error)) {
	t.Helper()
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = f() })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != want {
			t.Fatalf("goroutine %d: %s, %v", i, got[i], errs[i])
		}
	}
}

func TestConcurrentPut(t *testing.T) {
	s, dir := openStore(t, nil)
	content := bytes.Repeat([]byte("same bytes "), 100000)
	concurrently(t, 10, digestOf(content), func() (string, error) { return s.Put(bytes.NewReader(content)) })
	if list, _ := s.List(); !reflect.DeepEqual(list, []string{digestOf(content)}) {
		t.Fatalf("List %v", list)
	}
	r, size, err := s.Get(digestOf(content))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, content) || size != int64(len(content)) {
		t.Fatal("stored content differs")
	}
	assertEmptyDir(t, filepath.Join(dir, "tmp"))
}

func TestDir(t *testing.T) {
	var calls atomic.Int32
	s, dir := openStore(t, copyUnpack(&calls))
	content := []byte("bundle bytes")
	d, err := s.Put(bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "unpacked", strings.TrimPrefix(d, DigestPrefix))
	concurrently(t, 10, want, func() (string, error) { return s.Dir(d) })
	if n := calls.Load(); n != 1 {
		t.Fatalf("unpacked %d times, want once", n)
	}
	got, err := os.ReadFile(filepath.Join(want, "sub", "blob"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("unpacked content %q, %v", got, err)
	}
	if fi, err := os.Stat(want); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("unpacked dir mode %v, %v", fi.Mode(), err)
	}
	assertEmptyDir(t, filepath.Join(dir, "tmp"))

	// A new Store over the same directory finds the tree without unpacking again.
	s2, err := Open(dir, copyUnpack(&calls))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s2.Dir(d); err != nil || p != want || calls.Load() != 1 {
		t.Fatalf("reopened Dir: %s, %v, %d calls", p, err, calls.Load())
	}

	if _, err := s.Dir(digestOf([]byte("missing"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Dir of a missing artifact: %v", err)
	}
}

func TestDirUnpackError(t *testing.T) {
	var calls atomic.Int32
	fail := true
	s, dir := openStore(t, func(r io.Reader, dest string) error {
		calls.Add(1)
		if err := os.WriteFile(filepath.Join(dest, "partial"), []byte("x"), 0o644); err != nil {
			return err
		}
		if fail {
			return errors.New("archive entry \"../x\" escapes the destination")
		}
		return nil
	})
	d, err := s.Put(strings.NewReader("bad bundle"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Dir(d)
	if err == nil || !strings.Contains(err.Error(), `escapes the destination`) || !strings.Contains(err.Error(), d) {
		t.Fatalf("error %v", err)
	}
	assertEmptyDir(t, filepath.Join(dir, "unpacked"))
	assertEmptyDir(t, filepath.Join(dir, "tmp"))
	// The failure is not cached: a later call tries again.
	fail = false
	if _, err := s.Dir(d); err != nil || calls.Load() != 2 {
		t.Fatalf("retry: %v, %d calls", err, calls.Load())
	}
}

func TestDirWithoutUnpack(t *testing.T) {
	s, _ := openStore(t, nil)
	d, err := s.Put(strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dir(d); !errors.Is(err, ErrNoUnpack) {
		t.Fatalf("error %v", err)
	}
}

func TestDelete(t *testing.T) {
	s, dir := openStore(t, copyUnpack(nil))
	d, err := s.Put(strings.NewReader("to delete"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Dir(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(d); err != nil {
		t.Fatal(err)
	}
	if s.Has(d) {
		t.Fatal("Has after Delete")
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unpacked tree survives: %v", err)
	}
	if err := s.Delete(d); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	assertEmptyDir(t, filepath.Join(dir, "tmp"))
}

func TestGC(t *testing.T) {
	s, dir := openStore(t, copyUnpack(nil))
	put := func(c string) string {
		t.Helper()
		d, err := s.Put(strings.NewReader(c))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	keep1, keep2, drop1, drop2 := put("keep one"), put("keep two"), put("drop one"), put("drop two")
	for _, d := range []string{keep1, drop1, drop2} {
		if _, err := s.Dir(d); err != nil {
			t.Fatal(err)
		}
	}
	// An unpacked tree whose blob is gone, and junk in both directories.
	orphan := digestOf([]byte("orphan"))
	if err := os.MkdirAll(filepath.Join(dir, "unpacked", strings.TrimPrefix(orphan, DigestPrefix), "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "unpacked", "junk"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", "junk"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	keep := map[string]bool{keep1: true, keep2: true, "sha256:../../etc": true, "junk": true}
	removed, err := s.GC(keep)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{drop1, drop2, orphan}
	slices.Sort(want)
	if !reflect.DeepEqual(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	wantList := []string{keep1, keep2}
	slices.Sort(wantList)
	if list, _ := s.List(); !reflect.DeepEqual(list, wantList) {
		t.Fatalf("List %v, want %v", list, wantList)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "unpacked"))
	if len(ents) != 1 || DigestPrefix+ents[0].Name() != keep1 {
		t.Fatalf("unpacked holds %v", ents)
	}
	ents, _ = os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if len(ents) != 2 {
		t.Fatalf("blobs hold %v", ents)
	}
	if _, err := s.Dir(keep1); err != nil {
		t.Fatal(err)
	}
	// Nothing to do the second time.
	if removed, err := s.GC(keep); err != nil || len(removed) != 0 {
		t.Fatalf("second GC: %v, %v", removed, err)
	}
	assertEmptyDir(t, filepath.Join(dir, "tmp"))
}

func TestBadDigests(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "store")
	s, err := Open(dir, copyUnpack(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Something a traversal could reach.
	if err := os.WriteFile(filepath.Join(base, "victim"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := strings.Repeat("ab", 32)
	bad := []string{
		"",
		"sha256:",
		"sha256:../../etc",
		"sha256:../../../victim",
		"sha256:" + strings.Repeat("../", 21) + "x",
		"sha256:" + strings.ToUpper(good),
		"sha256:" + good[:63],
		"sha256:" + good + "0",
		"sha256:" + good[:62] + "/x",
		"sha256:" + good[:63] + "g",
		"sha256:" + good[:63] + "\x00",
		"sha512:" + good,
		"SHA256:" + good,
		good,
		" sha256:" + good,
		"sha256:" + good + "\n",
		"sha256:" + strings.Repeat("x", 1000),
	}
	for _, d := range bad {
		if s.Has(d) {
			t.Errorf("Has(%q) is true", d)
		}
		if _, _, err := s.Get(d); !errors.Is(err, ErrBadDigest) {
			t.Errorf("Get(%q): %v", d, err)
		}
		if _, err := s.Path(d); !errors.Is(err, ErrBadDigest) {
			t.Errorf("Path(%q): %v", d, err)
		}
		if _, err := s.Dir(d); !errors.Is(err, ErrBadDigest) {
			t.Errorf("Dir(%q): %v", d, err)
		}
		if err := s.Delete(d); !errors.Is(err, ErrBadDigest) {
			t.Errorf("Delete(%q): %v", d, err)
		}
		r := strings.NewReader("payload")
		if err := s.PutVerified(r, d); !errors.Is(err, ErrBadDigest) {
			t.Errorf("PutVerified(%q): %v", d, err)
		}
		if r.Len() != len("payload") {
			t.Errorf("PutVerified(%q) read its input before refusing the digest", d)
		}
		if _, err := ParseDigest(d); err == nil || len(err.Error()) > 200 {
			t.Errorf("ParseDigest(%q): %v", d, err)
		}
	}
	if h, err := ParseDigest("sha256:" + good); err != nil || h != good {
		t.Fatalf("ParseDigest(good) = %q, %v", h, err)
	}
	if b, err := os.ReadFile(filepath.Join(base, "victim")); err != nil || string(b) != "keep me" {
		t.Fatalf("victim: %q, %v", b, err)
	}
	ents, _ := os.ReadDir(base)
	if len(ents) != 2 {
		t.Fatalf("%s holds %v", base, ents)
	}
}

func TestOpenCleansTmp(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "put-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp", "unpack-abc", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, filepath.Join(dir, "tmp"))
}
