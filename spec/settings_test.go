package spec

import (
	"testing"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func TestUserSettingsSurviveTheManifest(t *testing.T) {
	manifest := &statev1.ComponentSpec{Env: map[string]string{"GREETING": "manifest", "DEBUG": "1"}, ScaleMin: 1, ScaleMax: 2, MemoryBytes: 128 << 20}
	wanted := proto.Clone(manifest).(*statev1.ComponentSpec)
	wanted.Env = map[string]string{"GREETING": "hi", "NEW": "x"} // DEBUG removed
	wanted.ScaleMax = 4
	u := UserChanges(manifest, wanted)
	if u.GetEnv()["GREETING"] != "hi" || u.GetEnv()["NEW"] != "x" || len(u.GetEnvRemoved()) != 1 || u.GetEnvRemoved()[0] != "DEBUG" ||
		u.GetScaleMax() != 4 || u.ScaleMin != nil || u.MemoryBytes != nil {
		t.Fatalf("user changes: %v", u)
	}
	if got := WithUser(manifest, u); !proto.Equal(got, wanted) {
		t.Fatalf("the manifest with the user's settings: %v, want %v", got, wanted)
	}
	// A new manifest: its new values apply where the user set nothing.
	next := proto.Clone(manifest).(*statev1.ComponentSpec)
	next.Env["LEVEL"] = "info"
	next.MemoryBytes = 256 << 20
	got := WithUser(next, u)
	if got.Env["GREETING"] != "hi" || got.Env["LEVEL"] != "info" || got.Env["DEBUG"] != "" || got.ScaleMax != 4 || got.MemoryBytes != 256<<20 {
		t.Fatalf("next deploy: %v", got)
	}
	if !RestartsInstances(manifest, wanted) {
		t.Fatal("an env change does not restart instances")
	}
	scaled := proto.Clone(manifest).(*statev1.ComponentSpec)
	scaled.ScaleMax = 9
	if RestartsInstances(manifest, scaled) {
		t.Fatal("a scale change restarts instances")
	}
	if u := UserChanges(manifest, manifest); len(u.GetEnv())+len(u.GetEnvRemoved()) != 0 || u.ScaleMax != nil {
		t.Fatalf("no change: %v", u)
	}
}
