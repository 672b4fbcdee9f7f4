package fsm

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func cmdPutSecret(comp, name string, ct []byte) *statev1.Command {
	return &statev1.Command{Op: &statev1.Command_PutSecret{PutSecret: &statev1.PutSecret{
		Component: comp, Name: name, KeyId: "k1", Nonce: bytes.Repeat([]byte{7}, 12), Ciphertext: ct,
	}}}
}

// The state machine stores secrets as it gets them (sealed outside Apply), moves the
// component's secrets_index, keeps them in snapshots and drops them with the component.
func TestSecrets(t *testing.T) {
	st := NewStore()
	if err := st.Apply(1, cmdCreateComponent(webComponent())); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*statev1.Command{
		cmdPutSecret("web", "1BAD", []byte("ct")),
		cmdPutSecret("web", "A-B", []byte("ct")),
		cmdPutSecret("web", "", []byte("ct")),
		cmdPutSecret("web", "OK", nil), // not sealed
		cmdPutSecret("nosuch", "OK", []byte("ct")),
		cmdPutSecret("web", "V9_NODE", []byte("ct")), // v9's reserved prefix
		cmdPutSecret("web", "v9_x", []byte("ct")),
	} {
		if err := st.Apply(2, bad); err == nil {
			t.Fatalf("applied %v", bad)
		}
	}
	// A value sealed for another component of the same name (deleted and created again
	// since) is refused.
	other := cmdPutSecret("web", "DB_PASSWORD", []byte("ct"))
	other.GetPutSecret().ComponentId = "c-web-before"
	if err := st.Apply(2, other); !errors.Is(err, ErrConflict) {
		t.Fatalf("a secret sealed for another component id: %v, want ErrConflict", err)
	}
	if err := st.Apply(3, cmdPutSecret("web", "DB_PASSWORD", []byte("sealed-1"))); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(4, cmdPutSecret("web", "API_KEY", []byte("sealed-2"))); err != nil {
		t.Fatal(err)
	}
	c, _ := st.Component("web")
	if c.SecretsIndex != 4 {
		t.Fatalf("secrets_index = %d, want 4", c.SecretsIndex)
	}
	got := st.Secrets("c-web")
	if len(got) != 2 || got[0].Name != "API_KEY" || got[1].Name != "DB_PASSWORD" || string(got[1].Ciphertext) != "sealed-1" || got[1].ModifyIndex != 3 {
		t.Fatalf("secrets = %v", got)
	}
	got[0].Ciphertext[0] = 'X' // a copy
	if string(st.Secrets("c-web")[0].Ciphertext) != "sealed-2" {
		t.Fatal("Secrets returned the stored row, not a copy")
	}

	// Snapshot and restore keep them.
	snap := st.State()
	st2 := NewStore()
	if err := st2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(st2.State(), snap) || len(st2.Secrets("c-web")) != 2 {
		t.Fatalf("restore lost secrets: %v", st2.State().Secrets)
	}

	if err := st.Apply(5, &statev1.Command{Op: &statev1.Command_DeleteSecret{DeleteSecret: &statev1.DeleteSecret{Component: "web", Name: "API_KEY"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(6, &statev1.Command{Op: &statev1.Command_DeleteSecret{DeleteSecret: &statev1.DeleteSecret{Component: "web", Name: "API_KEY"}}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if c, _ := st.Component("web"); c.SecretsIndex != 5 || len(st.Secrets("c-web")) != 1 {
		t.Fatalf("after delete: index %d, %v", c.SecretsIndex, st.Secrets("c-web"))
	}
	if err := st.Apply(7, cmdDeleteComponent("web")); err != nil {
		t.Fatal(err)
	}
	if n := len(st.State().Secrets); n != 0 {
		t.Fatalf("%d secrets outlive their component", n)
	}
}

// FuzzSecretName: a name is accepted exactly when it is an environment variable name
// ([A-Za-z_][A-Za-z0-9_]*, at most 128 bytes), and the check never panics.
func FuzzSecretName(f *testing.F) {
	for _, s := range []string{"DB_PASSWORD", "_x", "1A", "A-B", "", "é", "A\x00", strings.Repeat("A", 129)} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	f.Fuzz(func(t *testing.T, name string) {
		want := len(name) <= 128 && re.MatchString(name)
		if got := ValidSecretName(name) == nil; got != want {
			t.Fatalf("ValidSecretName(%q) accepted=%v, want %v", name, got, want)
		}
	})
}
