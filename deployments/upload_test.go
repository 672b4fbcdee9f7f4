package deployments

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/wasmtest"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// dirArtifacts takes any bundle and gives one directory for every digest.
type dirArtifacts struct{ dir string }

func (a dirArtifacts) Put(r io.Reader) (string, error) {
	_, err := io.Copy(io.Discard, r)
	return "sha256:bundle", err
}
func (a dirArtifacts) Dir(string) (string, error) { return a.dir, nil }

// TestUploadEndingUnfinishedFailsItsDeployment: an upload whose client goes away after its
// deployment was created fails that deployment with the reason (it would stay pending for
// ever); an upload that ends after its ready write committed keeps it ready and active.
func TestUploadEndingUnfinishedFailsItsDeployment(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"v9.toml":  "name = \"web\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"app.wasm\"\n",
		"app.wasm": string(wasmtest.Trap()),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := fsm.NewStore()
	w := &storeWriter{st: st}
	s := New(Config{NodeID: "n1", State: st, Writer: w, Artifacts: dirArtifacts{dir}, Pin: func(string) func() { return func() {} },
		Logs: noLogs{}, Logger: quiet()})
	// upload runs one upload whose client goes away right after the first write gone
	// commits; it returns the deployment that upload created.
	upload := func(gone func(*statev1.Command) bool) (*statev1.Deployment, error) {
		t.Helper()
		ctx, disconnect := context.WithCancel(context.Background())
		defer disconnect()
		var id string
		w.after = func(cmd *statev1.Command) {
			if d := cmd.GetCreateDeployment().GetDeployment(); d != nil {
				id = d.Id
			}
			if gone(cmd) {
				disconnect()
			}
		}
		_, err := s.Upload(ctx, &deployv1.UploadMeta{}, strings.NewReader("bundle"))
		w.after = nil
		d, derr := st.Deployment(id)
		if derr != nil {
			t.Fatalf("upload (%v): no deployment: %v", err, derr)
		}
		return d, err
	}

	d1, err := upload(func(cmd *statev1.Command) bool { return cmd.GetCreateDeployment() != nil })
	if err == nil {
		t.Fatal("an upload whose client went away succeeded")
	}
	if d1.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED || !strings.Contains(d1.Error, "client went away") {
		t.Fatalf("the deployment of an upload whose client went away: %s %q", d1.Status, d1.Error)
	}

	// The client goes away as the ready write commits: that write stands.
	d2, _ := upload(func(cmd *statev1.Command) bool { return cmd.GetSetDeploymentStatus().GetActivate() })
	c, _ := st.Component("web")
	if d2.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY || c.ActiveDeploymentId != d2.Id {
		t.Fatalf("a deployment whose ready write committed: %s %q, active %s", d2.Status, d2.Error, c.ActiveDeploymentId)
	}
}
