package fsm

import (
	"errors"
	"strings"
	"testing"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func cmdSignIn(id string, hash byte, login string, ghID int64, bind bool) *statev1.Command {
	return &statev1.Command{Time: at(20), Op: &statev1.Command_CreateApiToken{CreateApiToken: &statev1.CreateApiToken{
		Token:           &statev1.ApiToken{Id: id, Role: "admin", Sha256: sha(hash), GithubLogin: login, GithubUserId: ghID},
		BindGithubLogin: bind,
	}}}
}

// TestGithubBindingFirstUseWins: the first sign-in that binds a login records its GitHub
// user id; another id with the login (any case) is refused until the binding is dropped;
// a token that does not ask to bind (an organization member) is not refused; the binding
// survives a snapshot.
func TestGithubBindingFirstUseWins(t *testing.T) {
	st := NewStore()
	if err := st.Apply(1, cmdSignIn("k1", 1, "Alice", 1, true)); err != nil {
		t.Fatal(err)
	}
	if b, ok := st.GithubBinding("ALICE"); !ok || b.Login != "alice" || b.GithubUserId != 1 || b.CreateTime.GetSeconds() != at(20).Seconds {
		t.Fatalf("binding after the first sign-in: %v %v", b, ok)
	}
	if err := st.Apply(2, cmdSignIn("k2", 2, "alice", 1, true)); err != nil {
		t.Fatalf("the same id again: %v", err)
	}
	err := st.Apply(3, cmdSignIn("k3", 3, "alice", 2, true))
	if !errors.Is(err, ErrLoginBound) || !strings.Contains(err.Error(), "bound to GitHub user id 1 (an earlier sign-in), not 2") {
		t.Fatalf("another id: %v", err)
	}
	if _, err := st.Token("k3"); err == nil {
		t.Fatal("the refused token was recorded")
	}
	if err := st.Apply(4, cmdSignIn("k4", 4, "alice", 2, false)); err != nil {
		t.Fatalf("a token that does not bind: %v", err)
	}
	if err := st.Apply(5, cmdSignIn("k5", 5, "bob", 0, true)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("binding without an id: %v", err)
	}
	restored := NewStore()
	if err := restored.Restore(st.State()); err != nil {
		t.Fatal(err)
	}
	if bs := restored.GithubBindings(); len(bs) != 1 || bs[0].GithubUserId != 1 {
		t.Fatalf("bindings after restore: %v", bs)
	}
	del := &statev1.Command{Op: &statev1.Command_DeleteGithubBinding{DeleteGithubBinding: &statev1.DeleteGithubBinding{Login: "ALICE"}}}
	if err := restored.Apply(6, del); err != nil {
		t.Fatal(err)
	}
	if err := restored.Apply(7, del); !errors.Is(err, ErrNotFound) {
		t.Fatalf("dropping it twice: %v", err)
	}
	if err := restored.Apply(8, cmdSignIn("k3", 3, "alice", 2, true)); err != nil {
		t.Fatalf("another id after the binding was dropped: %v", err)
	}
	if b, _ := restored.GithubBinding("alice"); b.GetGithubUserId() != 2 {
		t.Fatalf("binding after the drop: %v", b)
	}
	bad := restored.State()
	bad.GithubBindings[0].Login = "Alice"
	if err := NewStore().Restore(bad); err == nil {
		t.Fatal("a snapshot with a binding not in lower case was restored")
	}
}
