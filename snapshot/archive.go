package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Version is the archive format this package writes and reads.
const Version = 1

const (
	manifestName   = "v9-snapshot.json"
	stateName      = "state.pb"
	artifactPrefix = "artifacts/"
	maxManifest    = 1 << 20
	maxState       = 1 << 30
	// MaxArtifact bounds one artifact in an archive.
	MaxArtifact = 4 << 30
)

// ErrFormat: the archive is not one Write produced (or it is damaged).
var ErrFormat = errors.New("not a v9 snapshot")

// Manifest describes an archive. It comes first, so a reader learns what follows.
type Manifest struct {
	Version   int       `json:"version"`
	Index     uint64    `json:"index"` // the state's applied index when saved
	Created   time.Time `json:"created"`
	Artifacts []string  `json:"artifacts"` // digests, sorted
}

// Referenced returns the digests of the artifacts st's deployments reference, sorted.
func Referenced(st *statev1.State) []string {
	seen := map[string]bool{}
	for _, d := range st.GetDeployments() {
		if d.GetArtifactDigest() != "" {
			seen[d.GetArtifactDigest()] = true
		}
	}
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// Opener returns an artifact's content and size.
type Opener func(digest string) (io.ReadCloser, int64, error)

// Write writes an archive of st and of every artifact it references, read through open.
func Write(w io.Writer, st *statev1.State, created time.Time, open Opener) error {
	b, err := fsm.EncodeSnapshot(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	m := Manifest{Version: Version, Index: st.GetIndex(), Created: created.UTC(), Artifacts: Referenced(st)}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	put := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != size {
			err = fmt.Errorf("%s: %d bytes, want %d", name, n, size)
		}
		return err
	}
	if err := put(manifestName, int64(len(mb)), bytes.NewReader(mb)); err != nil {
		return err
	}
	if err := put(stateName, int64(len(b)), bytes.NewReader(b)); err != nil {
		return err
	}
	for _, d := range m.Artifacts {
		rc, size, err := open(d)
		if err != nil {
			return fmt.Errorf("artifact %s: %w", d, err)
		}
		err = put(artifactPrefix+d, size, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("artifact %s: %w", d, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Read reads an archive Write produced. It passes each artifact to put (with its digest,
// which put must verify as it stores the bytes) and returns the manifest and the state once
// the archive has been read whole. It fails when anything is missing, extra or malformed,
// including an artifact that the state references and the archive lacks.
func Read(r io.Reader, put func(digest string, r io.Reader) error) (*Manifest, *statev1.State, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	tr := tar.NewReader(zr)
	next := func() (*tar.Header, error) {
		h, err := tr.Next()
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg || h.Size < 0 {
			return nil, fmt.Errorf("%w: entry %q is not a regular file", ErrFormat, h.Name)
		}
		return h, nil
	}
	readAll := func(name string, max int64) ([]byte, error) {
		h, err := next()
		if err != nil {
			return nil, fmt.Errorf("%w: missing %s: %v", ErrFormat, name, err)
		}
		if h.Name != name {
			return nil, fmt.Errorf("%w: entry %q where %s belongs", ErrFormat, h.Name, name)
		}
		if h.Size > max {
			return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrFormat, name, h.Size, max)
		}
		return io.ReadAll(tr)
	}

	mb, err := readAll(manifestName, maxManifest)
	if err != nil {
		return nil, nil, err
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: manifest: %v", ErrFormat, err)
	}
	if m.Version != Version {
		return nil, nil, fmt.Errorf("%w: format version %d, this v9 reads %d", ErrFormat, m.Version, Version)
	}
	sb, err := readAll(stateName, maxState)
	if err != nil {
		return nil, nil, err
	}
	st, err := fsm.DecodeSnapshot(sb)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	want := map[string]bool{}
	for _, d := range m.Artifacts {
		if !digestRE.MatchString(d) {
			return nil, nil, fmt.Errorf("%w: bad artifact digest %q in the manifest", ErrFormat, d)
		}
		want[d] = true
	}
	for _, d := range Referenced(st) {
		if !want[d] {
			return nil, nil, fmt.Errorf("%w: the state references artifact %s, which the manifest does not list", ErrFormat, d)
		}
	}
	got := map[string]bool{}
	for {
		h, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		d, ok := strings.CutPrefix(h.Name, artifactPrefix)
		if !ok || !want[d] || got[d] {
			return nil, nil, fmt.Errorf("%w: unexpected entry %q", ErrFormat, h.Name)
		}
		if h.Size > MaxArtifact {
			return nil, nil, fmt.Errorf("%w: artifact %s is %d bytes, more than %d", ErrFormat, d, h.Size, int64(MaxArtifact))
		}
		if err := put(d, io.LimitReader(tr, h.Size)); err != nil {
			return nil, nil, fmt.Errorf("artifact %s: %w", d, err)
		}
		got[d] = true
	}
	for d := range want {
		if !got[d] {
			return nil, nil, fmt.Errorf("%w: artifact %s is missing", ErrFormat, d)
		}
	}
	return &m, st, nil
}
