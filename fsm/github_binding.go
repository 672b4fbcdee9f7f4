package fsm

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// ---- GitHub login bindings ----
//
// A login listed without an id (--admins alice) is bound to the GitHub user id that first
// signs in with it; the binding is replicated so that every node agrees, and a sign-in
// that asks to bind a login held by another id fails here, in the log's order, so that
// two sign-ins racing on two nodes cannot both win.

// bindingKey is the key of a login's binding: GitHub logins are case-insensitive.
func bindingKey(login string) string { return strings.ToLower(login) }

// checkBinding refuses a token that asks to bind its login when the login is bound to
// another GitHub user id.
func (t *tables) checkBinding(op *statev1.CreateApiToken) error {
	if !op.GetBindGithubLogin() {
		return nil
	}
	k := op.GetToken()
	if k.GetGithubLogin() == "" || k.GetGithubUserId() <= 0 {
		return invalid("binding a GitHub login needs the token's login and GitHub user id")
	}
	if b, ok := t.bindings[bindingKey(k.GithubLogin)]; ok && b.GithubUserId != k.GithubUserId {
		return &kindError{kind: ErrLoginBound, msg: fmt.Sprintf("GitHub login %s is bound to GitHub user id %d (an earlier sign-in), not %d: refused; an admin can drop the binding (`v9 acl unbind %s`) or pin the id in the lists (%s:%d)",
			b.Login, b.GithubUserId, k.GithubUserId, b.Login, b.Login, k.GithubUserId)}
	}
	return nil
}

// bind records the binding a checked token asked for, if the login has none yet.
func (t *tables) bind(now *timestamppb.Timestamp, op *statev1.CreateApiToken) {
	k := op.GetToken()
	key := bindingKey(k.GetGithubLogin())
	if _, ok := t.bindings[key]; !op.GetBindGithubLogin() || ok {
		return
	}
	t.bindings[key] = &statev1.GithubBinding{Login: key, GithubUserId: k.GithubUserId, CreateTime: now}
}

func (t *tables) deleteGithubBinding(op *statev1.DeleteGithubBinding) error {
	key := bindingKey(op.GetLogin())
	if _, ok := t.bindings[key]; !ok {
		return notFound("GitHub login binding", key)
	}
	delete(t.bindings, key)
	return nil
}

// GithubBinding returns a copy of the binding of login (any case), false if it has none.
func (st *Store) GithubBinding(login string) (*statev1.GithubBinding, bool) {
	b, err := one(st, "GitHub login binding", bindingKey(login), func(t *tables) map[string]*statev1.GithubBinding { return t.bindings })
	return b, err == nil
}

// GithubBindings returns copies of every binding, sorted by login.
func (st *Store) GithubBindings() []*statev1.GithubBinding {
	return all(st, func(t *tables) map[string]*statev1.GithubBinding { return t.bindings }, nil)
}
