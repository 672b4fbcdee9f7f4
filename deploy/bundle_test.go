package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeTree creates files (name → content) under dir; a name ending in "/" is a directory,
// content "->target" makes a symbolic link, and a name ending in "*" an executable file.
func writeTree(t *testing.T, dir string, files map[string]string) { writeTreeTB(t, dir, files) }

func writeTreeTB(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), p)
		default:
			err = os.WriteFile(p, []byte(content), mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot describes a tree: each path with its kind, mode and content or link target.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if d.Name() == ".git" {
			return fs.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			out[rel] = "dir " + info.Mode().Perm().String()
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = "file " + info.Mode().Perm().String() + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var sampleTree = map[string]string{
	"v9.toml":           wasmHead,
	"hello.wasm":        "\x00asm\x01\x00\x00\x00",
	"bin/run*":          "#!/bin/sh\necho hi\n",
	"static/index.html": "<h1>hi</h1>",
	"static/css/a.css":  "body{}",
	"empty/":            "",
	"a.txt":             "a dot txt sorts before a/",
	"a/b":               "b",
	"link-file":         "->hello.wasm",
	"static/link-up":    "->../a.txt",
	"link-dir":          "->static",
	"dangling-inside":   "->not-there-yet",
	".git/HEAD":         "ref: refs/heads/main\n",
	"sub/.git":          "gitdir: ../.git/modules/sub\n",
	"deep/x/y/z/w/file": strings.Repeat("long content ", 5000),
	strings.Repeat("n", 150) + "/" + strings.Repeat("m", 120): "long name",
}

func TestPackUnpackRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, sampleTree)
	var buf bytes.Buffer
	digest, err := Pack(src, &buf)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if digest != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("digest %s is not the sha256 of the bytes written", digest)
	}
	dest := filepath.Join(t.TempDir(), "out")
	if err := Unpack(bytes.NewReader(buf.Bytes()), dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, src)
	delete(want, "sub/.git")
	got := snapshot(t, dest)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unpacked tree differs\n got %v\nwant %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dest, ".git")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf(".git was packed: %v", err)
	}
	if got["bin/run"] != "file -rwxr-xr-x #!/bin/sh\necho hi\n" || got["empty"] != "dir -rwxr-xr-x" {
		t.Fatalf("modes: %q %q", got["bin/run"], got["empty"])
	}
}

func TestPackDeterministic(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, sampleTree)
	pack := func() (string, []byte) {
		t.Helper()
		var buf bytes.Buffer
		d, err := Pack(src, &buf)
		if err != nil {
			t.Fatal(err)
		}
		return d, buf.Bytes()
	}
	d1, b1 := pack()
	d2, b2 := pack()
	if d1 != d2 || !bytes.Equal(b1, b2) {
		t.Fatal("two packs of the same tree differ")
	}
	// New times and a tighter mode change nothing.
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		if !d.IsDir() {
			if err := os.Chmod(p, 0o600); err != nil {
				return err
			}
		}
		return os.Chtimes(p, when, when)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "bin", "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	if d3, _ := pack(); d3 != d1 {
		t.Fatalf("digest changed after touching times and modes: %s != %s", d3, d1)
	}
	// A content change does change it.
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d4, _ := pack(); d4 == d1 {
		t.Fatal("digest did not change with the content")
	}
}

func TestPackHeaders(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"b": "x", "a/": "", "a/c*": "y", "l": "->b"})
	var buf bytes.Buffer
	if _, err := Pack(src, &buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Fatalf("gzip header carries %v %q", zr.ModTime, zr.Name)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Fatalf("%s: header not normalized: %+v", h.Name, h)
		}
		names = append(names, h.Name+" "+strconv.FormatInt(h.Mode, 8))
	}
	want := []string{"a/ 755", "a/c 755", "b 644", "l 777"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("entries %v, want %v", names, want)
	}
}

func TestPackRejects(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"absolute symlink", map[string]string{"etc": "->/etc"}, `symlink "etc" -> "/etc": points outside the directory`},
		{"symlink up", map[string]string{"up": "->../x"}, `symlink "up" -> "../x": points outside the directory`},
		{"symlink up from subdir", map[string]string{"a/up": "->../../x"}, `points outside the directory`},
		{"symlink chain", map[string]string{"l": "->.", "e": "->l/.."}, `symlink "e" -> "l/..": points outside the directory`},
		{"symlink loop", map[string]string{"a": "->b", "b": "->a"}, `too many levels of symbolic links`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, tt.files)
			_, err := Pack(src, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("fifo", func(t *testing.T) {
		src := t.TempDir()
		if err := syscall.Mkfifo(filepath.Join(src, "pipe"), 0o644); err != nil {
			t.Skip(err)
		}
		_, err := Pack(src, io.Discard)
		if err == nil || !strings.Contains(err.Error(), `"pipe" is a named pipe: only files, directories and symbolic links can be packed`) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("missing dir", func(t *testing.T) {
		if _, err := Pack(filepath.Join(t.TempDir(), "nope"), io.Discard); err == nil {
			t.Fatal("no error")
		}
	})
}

// ent is one entry for buildTar: a header, and a body for regular files.
type ent struct {
	tar.Header
	body string
}

func file(name, body string) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}

func dir(name string) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func symlink(name, target string) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func buildTar(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is a destination with an empty sibling directory next to it; outside reports
// anything that appeared next to dest or in the sibling.
type sandbox struct {
	base, dest, sibling string
}

func newSandbox(t testing.TB) sandbox {
	base := t.TempDir()
	s := sandbox{base: base, dest: filepath.Join(base, "dest"), sibling: filepath.Join(base, "sibling")}
	if err := os.Mkdir(s.sibling, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s sandbox) outside(t testing.TB) {
	t.Helper()
	ents, err := os.ReadDir(s.sibling)
	if err != nil || len(ents) != 0 {
		t.Fatalf("sibling directory holds %v (%v)", ents, err)
	}
	ents, err = os.ReadDir(s.base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "dest" && e.Name() != "sibling" {
			t.Fatalf("%s was written next to the destination", e.Name())
		}
	}
}

func TestUnpackAccepts(t *testing.T) {
	s := newSandbox(t)
	data := buildTar(t,
		ent{Header: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "abc"}}},
		dir("./"),
		file("./a/b.txt", "b"),
		symlink("a/up", "../top"),
		file("top", "top"),
		symlink("a/self", "."),
		symlink("a/parent", ".."),
		hardlink("a/hard", "top"),
		symlink("ldir", "a"),
		file("ldir/via-link", "through a link inside"),
		ent{Header: tar.Header{Typeflag: tar.TypeReg, Name: "exec", Mode: 0o700, Size: 2}, body: "#!"},
		file("a//c/./d", "messy name"),
	)
	if err := Unpack(bytes.NewReader(data), s.dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	s.outside(t)
	got := snapshot(t, s.dest)
	want := map[string]string{
		"a":          "dir -rwxr-xr-x",
		"a/b.txt":    "file -rw-r--r-- b",
		"a/up":       "link ../top",
		"a/self":     "link .",
		"a/parent":   "link ..",
		"a/hard":     "file -rw-r--r-- top",
		"a/via-link": "file -rw-r--r-- through a link inside",
		"a/c":        "dir -rwxr-xr-x",
		"a/c/d":      "file -rw-r--r-- messy name",
		"top":        "file -rw-r--r-- top",
		"ldir":       "link a",
		"exec":       "file -rwxr-xr-x #!",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestUnpackModes(t *testing.T) {
	s := newSandbox(t)
	e := file("x", "x")
	e.Mode = 0o4777 // setuid, world-writable
	d := dir("d/")
	d.Mode = 0o1777
	if err := Unpack(bytes.NewReader(buildTar(t, e, d)), s.dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"x": 0o755, "d": fs.ModeDir | 0o755} {
		fi, err := os.Lstat(filepath.Join(s.dest, name))
		if err != nil || fi.Mode() != want {
			t.Fatalf("%s: mode %v (%v), want %v", name, fi.Mode(), err, want)
		}
	}
}

func TestUnpackRejects(t *testing.T) {
	big := strings.Repeat("x", 3000)
	tests := []struct {
		name  string
		data  func(t *testing.T) []byte
		lim   Limits
		is    error
		want  string
		strip bool
		gzip  bool // data is already gzip: no plain-tar variant
	}{
		{name: "dotdot", is: ErrUnsafeArchive, want: `archive entry "../x" escapes the destination`,
			data: func(t *testing.T) []byte { return buildTar(t, file("../x", "x")) }},
		{name: "dotdot to sibling", is: ErrUnsafeArchive, want: `archive entry "../sibling/x" escapes the destination`,
			data: func(t *testing.T) []byte { return buildTar(t, file("../sibling/x", "x")) }},
		{name: "inner dotdot", is: ErrUnsafeArchive, want: `archive entry "a/../../x" escapes the destination`,
			data: func(t *testing.T) []byte { return buildTar(t, file("a/../../x", "x")) }},
		{name: "harmless dotdot still refused", is: ErrUnsafeArchive, want: `archive entry "a/../x" escapes the destination`,
			data: func(t *testing.T) []byte { return buildTar(t, file("a/../x", "x")) }},
		{name: "absolute", is: ErrUnsafeArchive, want: `archive entry "/etc/v9-test" has an absolute path`,
			data: func(t *testing.T) []byte { return buildTar(t, file("/etc/v9-test", "x")) }},
		{name: "symlink to /etc", is: ErrUnsafeArchive, want: `archive entry "etc" is a symbolic link to "/etc", which escapes the destination`,
			data: func(t *testing.T) []byte { return buildTar(t, symlink("etc", "/etc"), file("etc/v9-test", "x")) }},
		{name: "symlink to sibling", is: ErrUnsafeArchive, want: `archive entry "s" is a symbolic link to "../sibling", which escapes the destination`,
			data: func(t *testing.T) []byte { return buildTar(t, symlink("s", "../sibling"), file("s/x", "x")) }},
		{name: "symlink up from subdir", is: ErrUnsafeArchive, want: `archive entry "a/b/s" is a symbolic link to "../../../sibling", which escapes the destination`,
			data: func(t *testing.T) []byte { return buildTar(t, symlink("a/b/s", "../../../sibling")) }},
		{name: "symlink chain", is: ErrUnsafeArchive, want: `archive entry "e" is a symbolic link to "l/..", which escapes the destination`,
			data: func(t *testing.T) []byte {
				return buildTar(t, symlink("l", "."), symlink("e", "l/.."), file("e/sibling/x", "x"))
			}},
		{name: "symlink chain through subdir", is: ErrUnsafeArchive, want: `archive entry "a/e" is a symbolic link to "l2/../..", which escapes`,
			data: func(t *testing.T) []byte {
				return buildTar(t, symlink("a/l2", "../b"), dir("b/"), symlink("a/e", "l2/../.."), file("a/e/sibling/x", "x"))
			}},
		{name: "symlink redirected later", is: ErrUnsafeArchive, want: `archive entry "e" is a symbolic link that escapes the destination through other links`,
			data: func(t *testing.T) []byte { return buildTar(t, symlink("e", "x/.."), symlink("x", ".")) }},
		{name: "file through symlink to outside", is: ErrUnsafeArchive, want: `archive entry "d" is a symbolic link`,
			data: func(t *testing.T) []byte { return buildTar(t, symlink("d", "/tmp"), file("d/x", "x")) }},
		{name: "symlink loop", is: ErrUnsafeArchive, want: `too many levels of symbolic links`,
			data: func(t *testing.T) []byte { return buildTar(t, symlink("a", "b"), symlink("b", "a"), file("c", "")) }},
		{name: "hardlink outside", is: ErrUnsafeArchive, want: `archive entry "h" is a hard link to "../sibling/f", which escapes the destination`,
			data: func(t *testing.T) []byte { return buildTar(t, hardlink("h", "../sibling/f")) }},
		{name: "hardlink absolute", is: ErrUnsafeArchive, want: `archive entry "h" is a hard link to "/etc/passwd", which has an absolute path`,
			data: func(t *testing.T) []byte { return buildTar(t, hardlink("h", "/etc/passwd")) }},
		{name: "hardlink to dir", is: ErrUnsafeArchive, want: `archive entry "h" is a hard link to "d", which is not a file extracted before it`,
			data: func(t *testing.T) []byte { return buildTar(t, dir("d/"), hardlink("h", "d")) }},
		{name: "hardlink to symlink", is: ErrUnsafeArchive, want: `archive entry "h" is a hard link to "a/s", which is not a file extracted before it`,
			data: func(t *testing.T) []byte {
				return buildTar(t, file("x", ""), symlink("a/s", "../x"), hardlink("h", "a/s"))
			}},
		{name: "hardlink to missing", is: ErrUnsafeArchive, want: `is not a file extracted before it`,
			data: func(t *testing.T) []byte { return buildTar(t, hardlink("h", "later"), file("later", "")) }},
		{name: "char device", is: ErrUnsupportedEntry, want: `archive entry "null" has type "3": only files, directories and links are allowed`,
			data: func(t *testing.T) []byte {
				return buildTar(t, ent{Header: tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3, Mode: 0o666}})
			}},
		{name: "block device", is: ErrUnsupportedEntry, want: `has type "4"`,
			data: func(t *testing.T) []byte {
				return buildTar(t, ent{Header: tar.Header{Typeflag: tar.TypeBlock, Name: "sda", Mode: 0o666}})
			}},
		{name: "fifo", is: ErrUnsupportedEntry, want: `archive entry "p" has type "6"`,
			data: func(t *testing.T) []byte {
				return buildTar(t, ent{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o666}})
			}},
		{name: "duplicate", is: ErrUnsafeArchive, want: `archive entry "a" is a duplicate of an earlier entry`,
			data: func(t *testing.T) []byte { return buildTar(t, file("a", "1"), file("a", "2")) }},
		{name: "file over symlink", is: ErrUnsafeArchive, want: `archive entry "s" is a duplicate of an earlier entry`,
			data: func(t *testing.T) []byte {
				return buildTar(t, file("x", ""), symlink("s", "x"), file("s", "overwrite"))
			}},
		{name: "long name", is: ErrUnsafeArchive, want: `has a name longer than 4096 bytes`,
			data: func(t *testing.T) []byte { return buildTar(t, file(strings.Repeat("a/", 2048)+"b", "x")) }},
		{name: "too many files", is: ErrArchiveTooLarge, lim: Limits{MaxFiles: 3},
			want: `archive entry "d" is one more than the limit of 3 entries`,
			data: func(t *testing.T) []byte {
				return buildTar(t, file("a", ""), file("b", ""), file("c", ""), file("d", ""))
			}},
		{name: "too many bytes", is: ErrArchiveTooLarge, lim: Limits{MaxBytes: 5000},
			want: `archive entry "b" takes the archive over the limit of 5000 bytes`,
			data: func(t *testing.T) []byte { return buildTar(t, file("a", big), file("b", big)) }},
		{name: "non-file with content", is: ErrUnsupportedEntry, want: `archive entry "d" is not a file but declares 4096 bytes of content`,
			data: func(t *testing.T) []byte {
				// The header says a directory carries 4096 bytes; tar.Writer would refuse it.
				b := buildTar(t, file("d", strings.Repeat("z", 4096)))
				b[156] = tar.TypeDir
				fixChecksum(b[:512])
				return b
			}},
		{name: "lying header size", is: ErrArchiveTooLarge, lim: Limits{MaxBytes: 5000},
			want: `archive entry "liar" takes the archive over the limit of 5000 bytes`,
			data: func(t *testing.T) []byte { return lyingTar(t, 10, 100000) }},
		{name: "truncated big claim", is: ErrArchiveTooLarge, lim: Limits{MaxBytes: 5000},
			want: `archive entry "claim" takes the archive over the limit of 5000 bytes`,
			data: func(t *testing.T) []byte {
				// Claims 1 GiB; only 64 KiB follow before the stream ends.
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "claim", Mode: 0o644, Size: 1 << 30}); err != nil {
					t.Fatal(err)
				}
				if _, err := tw.Write(make([]byte, 64<<10)); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes() // not closed: truncated
			}},
		{name: "truncated below limit", want: `unpack "short": unexpected EOF`,
			data: func(t *testing.T) []byte {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "short", Mode: 0o644, Size: 1000}); err != nil {
					t.Fatal(err)
				}
				if _, err := tw.Write(make([]byte, 100)); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes()
			}},
		{name: "gzip bomb", gzip: true, is: ErrArchiveTooLarge, lim: Limits{MaxBytes: 1 << 20},
			want: `archive entry "zeros" takes the archive over the limit of 1048576 bytes`,
			data: func(t *testing.T) []byte {
				// 32 MiB of zeros in ~32 KiB of gzip.
				const size = 32 << 20
				var buf bytes.Buffer
				zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
				tw := tar.NewWriter(zw)
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: size}); err != nil {
					t.Fatal(err)
				}
				zeros := make([]byte, 1<<20)
				for i := 0; i < size/len(zeros); i++ {
					if _, err := tw.Write(zeros); err != nil {
						t.Fatal(err)
					}
				}
				tw.Close()
				zw.Close()
				return buf.Bytes()
			}},
		{name: "not an archive", want: `unpack: read archive`,
			data: func(t *testing.T) []byte { return bytes.Repeat([]byte("not a tar file "), 100) }},
		{name: "bad gzip", gzip: true, want: `unpack: read archive: gzip: invalid checksum`,
			data: func(t *testing.T) []byte {
				b := gz(t, buildTar(t, file("a", "a")))
				b[len(b)-8] ^= 0xff // the crc
				return b
			}},
		{name: "strip: second top dir", strip: true, is: ErrUnsafeArchive,
			want: `archive entry "other/x" is outside the archive's top-level directory "repo-sha"`,
			data: func(t *testing.T) []byte {
				return buildTar(t, dir("repo-sha/"), file("repo-sha/a", "a"), file("other/x", "x"))
			}},
		{name: "strip: file at top", strip: true, is: ErrUnsafeArchive, want: `archive entry "x" names the destination itself`,
			data: func(t *testing.T) []byte { return buildTar(t, file("x", "x")) }},
		{name: "strip: dotdot", strip: true, is: ErrUnsafeArchive, want: `archive entry "repo/../../x" escapes the destination`,
			data: func(t *testing.T) []byte { return buildTar(t, dir("repo/"), file("repo/../../x", "x")) }},
		{name: "strip: hardlink outside", strip: true, is: ErrUnsafeArchive,
			want: `archive entry "repo/h" is a hard link to "other/f", which is outside the archive's top-level directory "repo"`,
			data: func(t *testing.T) []byte { return buildTar(t, dir("repo/"), hardlink("repo/h", "other/f")) }},
	}
	for _, tt := range tests {
		for _, compress := range []bool{false, true} {
			name := tt.name
			if compress {
				name += "/gz"
			}
			if compress && tt.gzip {
				continue
			}
			t.Run(name, func(t *testing.T) {
				data := tt.data(t)
				if compress {
					data = gz(t, data)
				}
				s := newSandbox(t)
				unpack := Unpack
				if tt.strip {
					unpack = UnpackStripTop
				}
				err := unpack(bytes.NewReader(data), s.dest, tt.lim)
				s.outside(t)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Fatalf("error %v does not match %v", err, tt.is)
				}
				if tt.lim.MaxBytes > 0 {
					if n := treeBytes(t, s.dest); n > tt.lim.MaxBytes {
						t.Fatalf("%d bytes written, limit %d", n, tt.lim.MaxBytes)
					}
				}
			})
		}
	}
}

// lyingTar is a file entry "liar" whose ustar header says ustarSize bytes while a pax
// record (which readers obey) says realSize, and realSize bytes follow.
func lyingTar(t testing.TB, ustarSize, realSize int) []byte {
	t.Helper()
	block := func(h *tar.Header, body string) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
		// The header and the body padded to a block, without the writer's end marker.
		b := buf.Bytes()
		return append(b, make([]byte, (512-len(b)%512)%512)...)
	}
	rec := " size=" + strconv.Itoa(realSize) + "\n"
	rec = strconv.Itoa(len(rec)+len(strconv.Itoa(len(rec)+2))) + rec
	pax := block(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeaders/liar", Mode: 0o644, Size: int64(len(rec)), Format: tar.FormatUSTAR}, rec)
	pax[156] = tar.TypeXHeader
	fixChecksum(pax[:512])
	hdr := block(&tar.Header{Typeflag: tar.TypeReg, Name: "liar", Mode: 0o644, Size: int64(ustarSize), Format: tar.FormatUSTAR}, "")
	out := append(pax, hdr...)
	out = append(out, bytes.Repeat([]byte("L"), realSize)...)
	out = append(out, make([]byte, (512-realSize%512)%512+1024)...)
	return out
}

// fixChecksum recomputes a tar header block's checksum after it was edited.
func fixChecksum(h []byte) {
	copy(h[148:156], "        ")
	var sum int64
	for _, c := range h {
		sum += int64(c)
	}
	copy(h[148:156], []byte(strconv.FormatInt(sum, 8)))
	h[148+len(strconv.FormatInt(sum, 8))] = 0
}

func treeBytes(t testing.TB, dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func TestUnpackStripTop(t *testing.T) {
	s := newSandbox(t)
	data := gz(t, buildTar(t,
		ent{Header: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
			PAXRecords: map[string]string{"comment": "0123456789abcdef0123456789abcdef01234567"}}},
		dir("octo-hello-0123456/"),
		file("octo-hello-0123456/v9.toml", wasmHead),
		dir("octo-hello-0123456/src/"),
		file("octo-hello-0123456/src/main.go", "package main"),
		symlink("octo-hello-0123456/src/up", "../v9.toml"),
		hardlink("octo-hello-0123456/copy.toml", "octo-hello-0123456/v9.toml"),
	))
	if err := UnpackStripTop(bytes.NewReader(data), s.dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	s.outside(t)
	got := snapshot(t, s.dest)
	want := map[string]string{
		"v9.toml":     "file -rw-r--r-- " + wasmHead,
		"copy.toml":   "file -rw-r--r-- " + wasmHead,
		"src":         "dir -rwxr-xr-x",
		"src/main.go": "file -rw-r--r-- package main",
		"src/up":      "link ../v9.toml",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestUnpackLimitsExact(t *testing.T) {
	// Exactly at the limits is fine.
	s := newSandbox(t)
	data := buildTar(t, file("a", "12345"), file("b", "67890"), dir("c/"))
	if err := Unpack(bytes.NewReader(data), s.dest, Limits{MaxFiles: 3, MaxBytes: 10}); err != nil {
		t.Fatal(err)
	}
}

func FuzzUnpack(f *testing.F) {
	src := f.TempDir()
	writeTreeTB(f, src, map[string]string{"v9.toml": wasmHead, "a/b": "b", "l": "->a/b", "x*": "#!"})
	var packed bytes.Buffer
	if _, err := Pack(src, &packed); err != nil {
		f.Fatal(err)
	}
	f.Add(packed.Bytes())
	for _, b := range [][]byte{
		buildTar(f, file("a", "a"), dir("d/"), symlink("d/l", "../a"), hardlink("h", "a")),
		buildTar(f, file("../x", "x")),
		buildTar(f, symlink("l", "."), symlink("e", "l/.."), file("e/sibling/x", "x")),
		buildTar(f, symlink("e", "x/.."), symlink("x", ".")),
		buildTar(f, symlink("s", "../sibling"), file("s/x", "x")),
		buildTar(f, dir("top/"), file("top/a", "a"), hardlink("top/h", "top/a")),
	} {
		f.Add(b)
		f.Add(gz(f, b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, strip := range []bool{false, true} {
			s := newSandbox(t)
			unpack := Unpack
			if strip {
				unpack = UnpackStripTop
			}
			err := unpack(bytes.NewReader(data), s.dest, Limits{MaxFiles: 64, MaxBytes: 1 << 20})
			s.outside(t)
			if n := treeBytes(t, s.dest); n > 1<<20 {
				t.Fatalf("%d bytes written past the limit", n)
			}
			if err != nil {
				continue
			}
			// Every link in a tree that unpacked cleanly resolves inside it.
			root, rerr := os.OpenRoot(s.dest)
			if rerr != nil {
				t.Fatal(rerr)
			}
			werr := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.Type()&fs.ModeSymlink != 0 {
					if err := resolveInside(root, p); err != nil {
						t.Errorf("link %s: %v", p, err)
					}
				}
				if d.Type()&^(fs.ModeDir|fs.ModeSymlink) != 0 {
					t.Errorf("%s has type %v", p, d.Type())
				}
				return nil
			})
			root.Close()
			if werr != nil {
				t.Fatal(werr)
			}
		}
	})
}
