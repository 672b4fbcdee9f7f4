package auth

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Who the GitHub sign-in lists name. GitHub's numeric user id is the identity; a login is
// only a name, which GitHub frees for anyone to take when its holder renames. So an entry
// of --admins, --github-allowed-users (and --github-allowed-orgs) is a login, optionally
// pinned to its numeric id as LOGIN:ID ("alice:583231"):
//   - a pinned entry matches that id alone, whatever login it has now;
//   - a bare entry matches the login, bound in the replicated state to the GitHub user id
//     that first signs in with it (trust on first use): another id with the login is
//     refused (LoginBoundError) until an admin drops the binding or pins the id.

// ListEntry is one parsed entry of a sign-in list.
type ListEntry struct {
	Login string
	ID    int64 // GitHub's numeric id; 0: not pinned
}

// MaxLoginLen bounds a login in a list (github.com allows 39 characters; Enterprise
// managed users' logins carry a suffix).
const MaxLoginLen = 100

// ParseListEntry parses LOGIN or LOGIN:ID.
func ParseListEntry(s string) (ListEntry, error) {
	s = strings.TrimSpace(s)
	login, idText, pinned := strings.Cut(s, ":")
	if err := validLogin(login); err != nil {
		return ListEntry{}, fmt.Errorf("%q: %w; want LOGIN or LOGIN:ID (GitHub's numeric user id, e.g. alice:583231)", s, err)
	}
	e := ListEntry{Login: login}
	if !pinned {
		return e, nil
	}
	id, err := parseGitHubID(idText)
	if err != nil {
		return ListEntry{}, fmt.Errorf("%q: %w (read it with `curl https://api.github.com/users/%s`)", s, err, login)
	}
	e.ID = id
	return e, nil
}

func validLogin(s string) error {
	if s == "" {
		return errors.New("no login")
	}
	if len(s) > MaxLoginLen {
		return fmt.Errorf("a login has at most %d characters", MaxLoginLen)
	}
	if s[0] == '-' {
		return errors.New("a login does not start with '-'")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%q is not in a GitHub login (letters, digits, '-', '_')", r)
		}
	}
	return nil
}

func parseGitHubID(s string) (int64, error) {
	if s == "" || s[0] == '0' || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("GitHub user id %q is not a positive decimal number", s)
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("GitHub user id %q is too large", s)
	}
	return id, nil
}

// checkList parses every entry of a list, naming the flag in the error of a bad one.
func checkList(flag string, list []string) error {
	for _, s := range list {
		if _, err := ParseListEntry(s); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	return nil
}

// parsedLists are the sign-in lists parsed once by Check.
type parsedLists struct{ admins, users, orgs []ListEntry }

// lists returns the parsed lists: Check's, or (a config Check never saw) parsed now.
func (c *GitHubConfig) lists() *parsedLists {
	if c.parsed != nil {
		return c.parsed
	}
	return &parsedLists{entries(c.Admins), entries(c.AllowedUsers), entries(c.AllowedOrgs)}
}

// entries parses a checked list; a bad entry (never there after Check) matches nobody.
func entries(list []string) []ListEntry {
	out := make([]ListEntry, 0, len(list))
	for _, s := range list {
		if e, err := ParseListEntry(s); err == nil {
			out = append(out, e)
		}
	}
	return out
}

// Bindings reads the logins bound to GitHub user ids in the replicated state (fsm.Store
// does).
type Bindings interface {
	GithubBinding(login string) (*statev1.GithubBinding, bool)
	GithubBindings() []*statev1.GithubBinding
}

// LoginBoundError: the login is listed for another GitHub user id than the one holding it
// now (a rename, and someone else took the freed login).
type LoginBoundError struct {
	Login      string
	Bound, Got int64
	Pinned     bool // the list pins the id; else the first sign-in bound it
}

func (e *LoginBoundError) Error() string {
	if e.Pinned {
		return fmt.Sprintf("GitHub login %s is pinned to GitHub user id %d in the cluster's lists, but GitHub user id %d holds it now (renamed?): refused; if id %d is the rightful %s, an admin can pin it instead (%s:%d in --admins or --github-allowed-users)",
			e.Login, e.Bound, e.Got, e.Got, e.Login, e.Login, e.Got)
	}
	return fmt.Sprintf("GitHub login %s is bound to GitHub user id %d (the first to sign in with it here), but GitHub user id %d holds it now (renamed?): refused; if id %d is the rightful %s, an admin can drop the binding (`v9 acl unbind %s`) or pin the id (%s:%d in --admins or --github-allowed-users)",
		e.Login, e.Bound, e.Got, e.Got, e.Login, e.Login, e.Login, e.Got)
}

// lookup looks the GitHub user (login, id) up in a list: a pinned entry matches the id; a
// bare entry matches the login when the login is bound to id — or, at sign-in, when it is
// bound to nobody yet (bind: the sign-in binds it). conflict is set when the login is
// listed for another id.
func (c *GitHubConfig) lookup(list []ListEntry, login string, id int64, signIn bool) (ok, bind bool, conflict *LoginBoundError) {
	for _, e := range list {
		if e.ID != 0 {
			if e.ID == id {
				return true, false, nil
			}
			if strings.EqualFold(e.Login, login) {
				conflict = &LoginBoundError{Login: login, Bound: e.ID, Got: id, Pinned: true}
			}
			continue
		}
		if !strings.EqualFold(e.Login, login) {
			continue
		}
		var b *statev1.GithubBinding
		bound := false
		if c.Bindings != nil {
			b, bound = c.Bindings.GithubBinding(login)
		}
		switch {
		case bound && b.GithubUserId == id:
			return true, true, nil
		case bound:
			conflict = &LoginBoundError{Login: login, Bound: b.GithubUserId, Got: id}
		case signIn:
			return true, true, nil
		}
	}
	return false, false, conflict
}

// orgListed says whether an organization (login, id) is in --github-allowed-orgs: a pinned
// entry by id, a bare one by name.
func orgListed(list []ListEntry, login string, id int64) bool {
	for _, e := range list {
		if e.ID != 0 && e.ID == id || e.ID == 0 && strings.EqualFold(e.Login, login) {
			return true
		}
	}
	return false
}
