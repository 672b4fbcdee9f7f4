package deploy

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Bundle errors. Unpack's errors about an entry are an *ArchiveError that matches one of
// them with errors.Is.
var (
	// ErrUnsafeArchive: an entry would land, or point, outside the destination.
	ErrUnsafeArchive = errors.New("unsafe archive")
	// ErrArchiveTooLarge: the archive has more files or bytes than the Limits allow.
	ErrArchiveTooLarge = errors.New("archive too large")
	// ErrUnsupportedEntry: a device, fifo or other entry a bundle never holds.
	ErrUnsupportedEntry = errors.New("unsupported archive entry")
)

// Limits bound what Unpack extracts. A zero field takes its default from DefaultLimits.
type Limits struct {
	MaxFiles int   // entries of any kind: files, directories, links
	MaxBytes int64 // total bytes of file contents, counted as they are written
}

// DefaultLimits are the limits a zero Limits field means.
var DefaultLimits = Limits{MaxFiles: 10000, MaxBytes: 512 << 20}

// MaxNameLength is the longest entry name (and link target) Unpack accepts.
const MaxNameLength = 4096

// maxLinkHops bounds symbolic link resolution, as the kernel's ELOOP does.
const maxLinkHops = 40

// ArchiveError says which entry of an archive is refused and why.
type ArchiveError struct {
	Entry  string // the entry's name as written in the archive
	Reason string // e.g. "escapes the destination"
	Err    error  // one of the sentinel errors above
}

func (e *ArchiveError) Error() string {
	return fmt.Sprintf("archive entry %q %s", e.Entry, e.Reason)
}

func (e *ArchiveError) Unwrap() error { return e.Err }

func entryError(name string, sentinel error, format string, args ...any) error {
	return &ArchiveError{Entry: name, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// Pack writes a deterministic tar.gz of dir to w and returns "sha256:<hex>" of the bytes it
// wrote. Paths are in lexical walk order, times and owners are zeroed, files are 0644 (0755
// when any execute bit is set) and directories 0755. Regular files, directories and symbolic
// links that resolve inside dir (kept as links) are packed; .git is skipped; anything else,
// and a link that leaves dir, is an error.
func Pack(dir string, w io.Writer) (digest string, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("pack: %w", err)
	}
	defer root.Close()

	h := sha256.New()
	zw, err := gzip.NewWriterLevel(io.MultiWriter(w, h), gzip.BestSpeed)
	if err != nil {
		return "", fmt.Errorf("pack: %w", err)
	}
	tw := tar.NewWriter(zw)
	epoch := time.Unix(0, 0)

	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil // a submodule's .git file
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX}
		switch mode := info.Mode(); {
		case mode.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		case mode.IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, info.Size()
			if mode&0o111 != 0 {
				hdr.Mode = 0o755
			}
		case mode&fs.ModeSymlink != 0:
			target, err := root.Readlink(name)
			if err != nil {
				return err
			}
			if err := checkLink(root, name, filepath.ToSlash(target)); err != nil {
				return fmt.Errorf("symlink %q -> %q: %w", name, target, err)
			}
			hdr.Typeflag, hdr.Mode, hdr.Linkname = tar.TypeSymlink, 0o777, filepath.ToSlash(target)
		default:
			return fmt.Errorf("%q is a %s: only files, directories and symbolic links can be packed", name, kindOf(mode))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := root.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if n, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return fmt.Errorf("%q changed while packing (%d of %d bytes): %w", name, n, hdr.Size, err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("pack %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("pack: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("pack: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func kindOf(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "named pipe"
	case mode&fs.ModeSocket != 0:
		return "socket"
	case mode&fs.ModeCharDevice != 0:
		return "character device"
	case mode&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// errLinkEscapes is checkLink's answer for a link that leaves the root.
var errLinkEscapes = errors.New("points outside the directory")

// checkLink reports whether the symbolic link name (slash path relative to root) with the
// given target stays inside root: the target is relative, stays inside lexically, and
// resolving the link through the tree as it is now (links included) never leaves root.
func checkLink(root *os.Root, name, target string) error {
	if target == "" || path.IsAbs(target) || strings.IndexByte(target, 0) >= 0 {
		return errLinkEscapes
	}
	dir := path.Dir(name)
	if lexical := path.Join(dir, target); lexical != "." && !isLocalSlash(lexical) {
		return errLinkEscapes
	}
	// Resolve the target as written (not cleaned: "l/.." is not "." when l is a link).
	return resolveInside(root, dir+"/"+target)
}

// resolveInside walks the slash path p from root, following symbolic links the way the
// kernel would, and fails if that ever climbs above root. Missing components are walked
// lexically, so a dangling link passes only if it could never lead outside either.
func resolveInside(root *os.Root, p string) error {
	var done []string // resolved components; none of them is a link
	todo := strings.Split(p, "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return errLinkEscapes
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(done, c)...)
		fi, err := root.Lstat(cur)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			// A directory, a file, or nothing (yet): go on lexically.
			done = append(done, c)
			continue
		}
		if hops++; hops > maxLinkHops {
			return errors.New("too many levels of symbolic links")
		}
		target, err := root.Readlink(cur)
		if err != nil {
			return err
		}
		target = filepath.ToSlash(target)
		if path.IsAbs(target) {
			return errLinkEscapes
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return nil
}

// isLocalSlash reports whether the slash path p is relative and stays inside its root
// lexically (no "..", not absolute, not empty).
func isLocalSlash(p string) bool {
	return p != "" && !path.IsAbs(p) && filepath.IsLocal(filepath.FromSlash(p))
}

// Unpack extracts a tar.gz (or, without the gzip magic, a plain tar) into dest, creating
// dest if needed. It refuses absolute names, ".." components, links whose targets resolve
// outside dest, hard links to anything but a regular file already extracted, devices and
// fifos, names longer than MaxNameLength, and more entries or content bytes than lim
// allows (bytes are counted while copying, whatever the headers say). Nothing is ever
// written outside dest; on error dest may hold part of the archive.
func Unpack(r io.Reader, dest string, lim Limits) error {
	return unpack(r, dest, lim, false)
}

// UnpackStripTop is Unpack for archives whose entries all sit under one top-level
// directory, as GitHub's tarballs do ("owner-repo-sha/..."): that first component is
// stripped from every name and hard link target.
func UnpackStripTop(r io.Reader, dest string, lim Limits) error {
	return unpack(r, dest, lim, true)
}

func unpack(r io.Reader, dest string, lim Limits, stripTop bool) error {
	if lim.MaxFiles <= 0 {
		lim.MaxFiles = DefaultLimits.MaxFiles
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultLimits.MaxBytes
	}
	br := bufio.NewReader(r)
	var in io.Reader = br
	var zr *gzip.Reader
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		var err error
		if zr, err = gzip.NewReader(br); err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		defer zr.Close()
		in = zr
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer root.Close()

	u := &unpacker{root: root, dest: dest, lim: lim, stripTop: stripTop}
	tr := tar.NewReader(in)
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("unpack: read archive: %w", err)
		}
		if entries >= lim.MaxFiles {
			return entryError(hdr.Name, ErrArchiveTooLarge, "is one more than the limit of %d entries", lim.MaxFiles)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Links were checked as they were made, but a later entry (another link) can change
	// where an earlier one leads: check them all against the finished tree.
	for _, l := range u.links {
		if err := resolveInside(root, l.name); errors.Is(err, errLinkEscapes) {
			return entryError(l.entry, ErrUnsafeArchive, "is a symbolic link that escapes the destination through other links")
		} else if err != nil {
			return entryError(l.entry, ErrUnsafeArchive, "is a symbolic link that cannot be resolved: %v", err)
		}
	}
	// Read a little past the end of the tar stream so that gzip checks its trailer; a
	// corrupt or truncated download fails here. Trailing data beyond that is ignored.
	if zr != nil {
		if _, err := io.CopyN(io.Discard, zr, 1<<20); err != nil && err != io.EOF {
			return fmt.Errorf("unpack: read archive: %w", err)
		}
	}
	return nil
}

type unpacker struct {
	root     *os.Root
	dest     string
	lim      Limits
	stripTop bool
	top      string // the top-level directory being stripped
	written  int64  // content bytes so far
	links    []link
}

type link struct{ entry, name string }

// name checks an archive name and returns it cleaned, relative to dest, slash-separated;
// "" means the entry is the destination itself.
func (u *unpacker) name(raw string) (string, error) {
	if len(raw) > MaxNameLength {
		return "", entryError(raw[:64]+"...", ErrUnsafeArchive, "has a name longer than %d bytes", MaxNameLength)
	}
	if raw == "" || strings.IndexByte(raw, 0) >= 0 {
		return "", entryError(raw, ErrUnsafeArchive, "has an empty or invalid name")
	}
	if strings.HasPrefix(raw, "/") || filepath.IsAbs(raw) {
		return "", entryError(raw, ErrUnsafeArchive, "has an absolute path")
	}
	for _, c := range strings.Split(raw, "/") {
		if c == ".." {
			return "", entryError(raw, ErrUnsafeArchive, "escapes the destination")
		}
	}
	name := path.Clean(raw)
	if name == "." {
		return "", nil
	}
	if u.stripTop {
		top, rest, _ := strings.Cut(name, "/")
		if u.top == "" && top != "." {
			u.top = top
		}
		if top != u.top {
			return "", entryError(raw, ErrUnsafeArchive, "is outside the archive's top-level directory %q", u.top)
		}
		if name = rest; name == "" {
			return "", nil
		}
	}
	// Belt and braces: the joined path must stay under dest.
	rel, err := filepath.Rel(u.dest, filepath.Join(u.dest, filepath.FromSlash(name)))
	if err != nil || !isLocalSlash(filepath.ToSlash(rel)) {
		return "", entryError(raw, ErrUnsafeArchive, "escapes the destination")
	}
	return name, nil
}

func (u *unpacker) entry(hdr *tar.Header, tr io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil // pax metadata for the whole archive (GitHub writes the commit id here)
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink: // the reader turns old TypeRegA into TypeReg
	default:
		return entryError(hdr.Name, ErrUnsupportedEntry, "has type %q: only files, directories and links are allowed", string(hdr.Typeflag))
	}
	name, err := u.name(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg && hdr.Size != 0 {
		return entryError(hdr.Name, ErrUnsupportedEntry, "is not a file but declares %d bytes of content", hdr.Size)
	}
	if name == "" {
		if hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return entryError(hdr.Name, ErrUnsafeArchive, "names the destination itself")
	}
	local := filepath.FromSlash(name)
	if dir := path.Dir(name); dir != "." {
		if err := u.root.MkdirAll(filepath.FromSlash(dir), 0o755); err != nil {
			return u.fsError(hdr.Name, err)
		}
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := u.root.MkdirAll(local, 0o755); err != nil {
			return u.fsError(hdr.Name, err)
		}
		return nil

	case tar.TypeSymlink:
		target := hdr.Linkname
		if len(target) > MaxNameLength {
			return entryError(hdr.Name, ErrUnsafeArchive, "has a link target longer than %d bytes", MaxNameLength)
		}
		if err := checkLink(u.root, name, target); err != nil {
			if errors.Is(err, errLinkEscapes) {
				return entryError(hdr.Name, ErrUnsafeArchive, "is a symbolic link to %q, which escapes the destination", target)
			}
			return entryError(hdr.Name, ErrUnsafeArchive, "is a symbolic link to %q: %v", target, err)
		}
		if err := u.root.Symlink(filepath.FromSlash(target), local); err != nil {
			return u.fsError(hdr.Name, err)
		}
		u.links = append(u.links, link{entry: hdr.Name, name: name})
		return nil

	case tar.TypeLink:
		target, err := u.name(hdr.Linkname)
		if err != nil {
			var ae *ArchiveError
			if errors.As(err, &ae) {
				return entryError(hdr.Name, ae.Err, "is a hard link to %q, which %s", hdr.Linkname, ae.Reason)
			}
			return err
		}
		if target == "" {
			return entryError(hdr.Name, ErrUnsafeArchive, "is a hard link to the destination itself")
		}
		fi, err := u.root.Lstat(filepath.FromSlash(target))
		if err != nil || !fi.Mode().IsRegular() {
			return entryError(hdr.Name, ErrUnsafeArchive, "is a hard link to %q, which is not a file extracted before it", hdr.Linkname)
		}
		if err := u.root.Link(filepath.FromSlash(target), local); err != nil {
			return u.fsError(hdr.Name, err)
		}
		return nil
	}

	// A regular file: created new (never through an existing name or link), its content
	// counted against the limit as it is copied.
	mode := fs.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := u.root.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return u.fsError(hdr.Name, err)
	}
	n, err := io.Copy(f, io.LimitReader(tr, u.lim.MaxBytes-u.written))
	u.written += n
	if err != nil {
		err = fmt.Errorf("unpack %q: %w", hdr.Name, err)
	} else if u.written == u.lim.MaxBytes {
		// At the limit: one more byte of content is one too many.
		var probe [1]byte
		if m, _ := io.ReadFull(tr, probe[:]); m > 0 {
			err = entryError(hdr.Name, ErrArchiveTooLarge, "takes the archive over the limit of %d bytes", u.lim.MaxBytes)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("unpack %q: %w", hdr.Name, cerr)
	}
	if err == nil {
		err = u.root.Chmod(local, mode) // whatever the umask did
	}
	return err
}

// fsError explains a failure to create an entry: most often a name used twice, or a path
// that leads through a link out of dest (which os.Root refuses).
func (u *unpacker) fsError(entry string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return entryError(entry, ErrUnsafeArchive, "is a duplicate of an earlier entry")
	}
	return entryError(entry, ErrUnsafeArchive, "cannot be created inside the destination: %v", errors.Unwrap(err))
}
