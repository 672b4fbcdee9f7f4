package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// fixture is a state with two deployments sharing one artifact and a third with another.
func fixture() (*statev1.State, map[string][]byte) {
	a, b := []byte("module a"), []byte("bundle b")
	st := &statev1.State{
		Index:      42,
		Components: []*statev1.Component{{Id: "c1", Name: "web"}},
		Deployments: []*statev1.Deployment{
			{Id: "d1", ComponentId: "c1", ArtifactDigest: digestOf(a)},
			{Id: "d2", ComponentId: "c1", ArtifactDigest: digestOf(a)},
			{Id: "d3", ComponentId: "c1", ArtifactDigest: digestOf(b)},
			{Id: "d4", ComponentId: "c1"}, // a failed build: no artifact
		},
	}
	return st, map[string][]byte{digestOf(a): a, digestOf(b): b}
}

func opener(arts map[string][]byte) Opener {
	return func(d string) (io.ReadCloser, int64, error) {
		b, ok := arts[d]
		if !ok {
			return nil, 0, fmt.Errorf("no artifact %s", d)
		}
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}
}

// collect is a put that verifies digests, as the artifact store does.
func collect(into map[string][]byte) func(string, io.Reader) error {
	return func(d string, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if digestOf(b) != d {
			return errors.New("digest mismatch")
		}
		into[d] = b
		return nil
	}
}

func TestRoundTrip(t *testing.T) {
	st, arts := fixture()
	var buf bytes.Buffer
	if err := Write(&buf, st, time.Unix(100, 0), opener(arts)); err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	m, back, err := Read(&buf, collect(got))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back, st) {
		t.Fatalf("state changed through the archive:\n got %v\nwant %v", back, st)
	}
	if m.Index != 42 || len(m.Artifacts) != 2 || len(got) != 2 {
		t.Fatalf("manifest %+v, artifacts %d; want index 42 and 2 artifacts", m, len(got))
	}
	for d, b := range arts {
		if !bytes.Equal(got[d], b) {
			t.Fatalf("artifact %s changed", d)
		}
	}
}

func TestWriteFailsWithoutAnArtifact(t *testing.T) {
	st, arts := fixture()
	delete(arts, st.Deployments[2].ArtifactDigest)
	if err := Write(io.Discard, st, time.Now(), opener(arts)); err == nil || !strings.Contains(err.Error(), st.Deployments[2].ArtifactDigest) {
		t.Fatalf("Write = %v, want an error naming the missing artifact", err)
	}
}

// archive builds a tar.gz of the given entries, in order.
func archive(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o644, Size: int64(len(e[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestReadRejects(t *testing.T) {
	st, arts := fixture()
	var good bytes.Buffer
	if err := Write(&good, st, time.Unix(1, 0), opener(arts)); err != nil {
		t.Fatal(err)
	}
	stateBytes, _ := proto.Marshal(st)
	da, db := st.Deployments[0].ArtifactDigest, st.Deployments[2].ArtifactDigest
	manifest := fmt.Sprintf(`{"version":1,"index":42,"artifacts":[%q,%q]}`, da, db)
	cases := map[string][]byte{
		"not gzip":          []byte("hello"),
		"empty tar":         archive(t),
		"state first":       archive(t, [2]string{stateName, string(stateBytes)}),
		"newer version":     archive(t, [2]string{manifestName, `{"version":2}`}, [2]string{stateName, string(stateBytes)}),
		"missing artifact":  archive(t, [2]string{manifestName, manifest}, [2]string{stateName, string(stateBytes)}, [2]string{artifactPrefix + da, string(arts[da])}),
		"unlisted artifact": archive(t, [2]string{manifestName, fmt.Sprintf(`{"version":1,"artifacts":[%q]}`, da)}, [2]string{stateName, string(stateBytes)}),
		"path entry":        archive(t, [2]string{manifestName, manifest}, [2]string{stateName, string(stateBytes)}, [2]string{"../etc/passwd", "x"}),
		"tampered artifact": archive(t, [2]string{manifestName, manifest}, [2]string{stateName, string(stateBytes)}, [2]string{artifactPrefix + da, "evil"}, [2]string{artifactPrefix + db, string(arts[db])}),
		"truncated":         good.Bytes()[:good.Len()/2],
	}
	for name, b := range cases {
		if _, _, err := Read(bytes.NewReader(b), collect(map[string][]byte{})); err == nil {
			t.Errorf("%s: Read accepted it", name)
		}
	}
}

// FuzzRead: no archive makes Read panic or return a state without an error-free read of
// every artifact it references.
func FuzzRead(f *testing.F) {
	st, arts := fixture()
	var good bytes.Buffer
	if err := Write(&good, st, time.Unix(1, 0), opener(arts)); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := map[string][]byte{}
		_, st, err := Read(bytes.NewReader(b), collect(got))
		if err != nil {
			return
		}
		for _, d := range Referenced(st) {
			if _, ok := got[d]; !ok {
				t.Fatalf("state references %s, which Read never stored", d)
			}
		}
	})
}
