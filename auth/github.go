package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"golang.org/x/oauth2"
)

// GitHubConfig is how a cluster signs users in with GitHub (agent flags --github-client-id,
// --github-client-secret, --github-url, --github-api-url, --github-allowed-users,
// --github-allowed-orgs, --admins, --github-default-role, --public-url, --session-ttl).
type GitHubConfig struct {
	// ClientID and ClientSecret are the GitHub OAuth app's; no client id: no GitHub sign-in.
	ClientID, ClientSecret string
	// WebURL is GitHub's web host (authorize, token and device endpoints), default
	// https://github.com; APIURL its REST API, default https://api.github.com/ (GitHub
	// Enterprise: https://HOST and https://HOST/api/v3/).
	WebURL, APIURL string
	// AllowedUsers and AllowedOrgs say who may sign in: a listed user, or a member of a
	// listed organization. Admins may always. With neither list, only Admins may sign in.
	// Entries are LOGIN or LOGIN:ID (pinned to GitHub's numeric id; see ListEntry).
	AllowedUsers, AllowedOrgs []string
	// Admins are the users that get the admin role; everyone else gets DefaultRole.
	Admins []string
	// DefaultRole is the role of a signed-in user who is not an admin (default developer).
	DefaultRole Role
	// PublicURL is the base URL users reach the console at (https://v9.example.com); the
	// OAuth callback is PublicURL + CallbackPath, which must be the OAuth app's callback URL.
	// Empty: taken from each request's Host (fine on one host; set it behind a proxy).
	PublicURL string
	// SessionTTL is how long a console session lasts (default 7 days); TokenTTL how long a
	// token made by `v9 login` through GitHub lasts (default 30 days).
	SessionTTL, TokenTTL time.Duration
	// HTTPClient reaches GitHub (default: one with a 30 s timeout).
	HTTPClient *http.Client
	// Bindings are the logins of the lists bound to a GitHub user id at their first
	// sign-in (the node's replicated state); nil: none is bound yet.
	Bindings Bindings

	parsed *parsedLists // by Check
}

// Defaults of GitHubConfig.
const (
	DefaultGitHubWebURL = "https://github.com"
	DefaultSessionTTL   = 7 * 24 * time.Hour
	DefaultUserTokenTTL = 30 * 24 * time.Hour
)

// Paths of the console's sign-in on every node's API port.
const (
	LoginPath    = "/auth/github/login"
	CallbackPath = "/auth/github/callback"
	SignOutPath  = "/auth/signout"
)

// GitHubScopes are what sign-in asks of GitHub: the profile, organization membership
// (private memberships are visible only with read:org), and the user's repositories (the
// console's Start page lists them, and reads their branches and v9.toml, with this grant).
var GitHubScopes = []string{"read:user", "read:org", "repo"}

// Enabled reports whether GitHub sign-in is configured.
func (c *GitHubConfig) Enabled() bool { return c != nil && c.ClientID != "" }

// WebBase is GitHub's web host without a trailing slash.
func (c *GitHubConfig) WebBase() string { return c.webURL() }

// UserTokenTTL is how long a token made by `v9 login` through GitHub lasts.
func (c *GitHubConfig) UserTokenTTL() time.Duration { return c.tokenTTL() }

func (c *GitHubConfig) webURL() string {
	if c.WebURL == "" {
		return DefaultGitHubWebURL
	}
	return strings.TrimRight(c.WebURL, "/")
}

func (c *GitHubConfig) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *GitHubConfig) sessionTTL() time.Duration {
	if c.SessionTTL > 0 {
		return c.SessionTTL
	}
	return DefaultSessionTTL
}

func (c *GitHubConfig) tokenTTL() time.Duration {
	if c.TokenTTL > 0 {
		return c.TokenTTL
	}
	return DefaultUserTokenTTL
}

// Check reports a configuration that cannot work.
func (c *GitHubConfig) Check() error {
	if !c.Enabled() {
		return nil
	}
	if c.ClientSecret == "" {
		return errors.New("--github-client-id needs --github-client-secret (the web sign-in exchanges codes with it)")
	}
	if len(c.AllowedUsers) == 0 && len(c.AllowedOrgs) == 0 && len(c.Admins) == 0 {
		return errors.New("GitHub sign-in lets nobody in: give --github-allowed-users, --github-allowed-orgs or --admins")
	}
	if err := c.CheckLists(); err != nil {
		return err
	}
	c.parsed = nil
	c.parsed = c.lists()
	if c.DefaultRole == RoleNone {
		c.DefaultRole = RoleDeveloper
	}
	return nil
}

// CheckLists reports a bad entry of --admins, --github-allowed-users or
// --github-allowed-orgs (each LOGIN or LOGIN:ID).
func (c *GitHubConfig) CheckLists() error {
	for _, l := range []struct {
		flag string
		list []string
	}{{"--admins", c.Admins}, {"--github-allowed-users", c.AllowedUsers}, {"--github-allowed-orgs", c.AllowedOrgs}} {
		if err := checkList(l.flag, l.list); err != nil {
			return err
		}
	}
	return nil
}

// OAuth2 is the OAuth client of the web and device flows; redirect is the callback URL
// ("" for the device flow).
func (c *GitHubConfig) OAuth2(redirect string) *oauth2.Config {
	return GitHubOAuth2(c.ClientID, c.ClientSecret, c.webURL(), redirect)
}

// GitHubOAuth2 is GitHub's OAuth client configuration at web (its web host).
func GitHubOAuth2(clientID, clientSecret, web, redirect string) *oauth2.Config {
	web = strings.TrimRight(web, "/")
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		RedirectURL:  redirect,
		Scopes:       GitHubScopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:       web + "/login/oauth/authorize",
			TokenURL:      web + "/login/oauth/access_token",
			DeviceAuthURL: web + "/login/device/code",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

// Identity is a GitHub user allowed to sign in, with the role they get.
type Identity struct {
	Login string
	ID    int64 // GitHub's numeric user id: the identity (a login is only a name)
	Role  Role
	// bind: a list names the login without an id; the sign-in binds the login to ID
	// unless it is bound already (CreateApiToken.bind_github_login).
	bind bool
	// token is the GitHub access token Identify read the login with: a follower passes it
	// to the leader with the sign-in's write, so the leader checks it with GitHub itself.
	token string
}

// RefusedError says that GitHub knows the user but the cluster does not let them in.
type RefusedError struct{ Login string }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("GitHub user %s may not sign in to this cluster: an admin can add the login to --github-allowed-users or the user to one of the organizations of --github-allowed-orgs", e.Login)
}

// ForeignTokenError: GitHub says a token was not issued to this cluster's OAuth app.
type ForeignTokenError struct{ ClientID string }

func (e *ForeignTokenError) Error() string {
	return fmt.Sprintf("this GitHub token was not issued to this cluster's OAuth app (client id %s): a personal access token or another app's token signs nobody in here; use `v9 login --github` or the console's sign-in", e.ClientID)
}

// Identify reads who holds a GitHub user access token from GitHub itself (/user, and
// /user/orgs when organizations are allowed) and checks that the cluster lets them in. It
// never trusts a login it did not read from GitHub, nor a token GitHub did not issue to
// this cluster's OAuth app: a token the user gave some other app, or a personal access
// token, would otherwise sign them in here (ForeignTokenError).
func (c *GitHubConfig) Identify(ctx context.Context, token string) (*Identity, error) {
	gh, err := c.client(c.httpClient())
	if err != nil {
		return nil, err
	}
	gh = gh.WithAuthToken(token)
	u, _, err := gh.Users.Get(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("read the user from GitHub: %w", err)
	}
	if err := c.checkAppToken(ctx, token); err != nil {
		return nil, err
	}
	login := u.GetLogin()
	if login == "" || u.GetID() <= 0 {
		return nil, errors.New("GitHub answered /user without a login or a user id")
	}
	id := &Identity{Login: login, ID: u.GetID(), Role: c.defaultRole(), token: token}
	lists := c.lists()
	ok, bind, conflict := c.lookup(lists.admins, login, id.ID, true)
	if ok {
		id.Role, id.bind = RoleAdmin, bind
		return id, nil
	}
	ok, bind, conflictUser := c.lookup(lists.users, login, id.ID, true)
	if ok {
		id.bind = bind
		return id, nil
	}
	if len(c.AllowedOrgs) > 0 {
		opt := &github.ListOptions{PerPage: 100}
		for page := 0; page < 10; page++ {
			orgs, resp, err := gh.Organizations.List(ctx, "", opt)
			if err != nil {
				return nil, fmt.Errorf("read %s's organizations from GitHub: %w", login, err)
			}
			for _, o := range orgs {
				if orgListed(lists.orgs, o.GetLogin(), o.GetID()) {
					return id, nil
				}
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
	}
	if conflict != nil {
		return nil, conflict
	}
	if conflictUser != nil {
		return nil, conflictUser
	}
	return nil, &RefusedError{Login: login}
}

func (c *GitHubConfig) defaultRole() Role {
	if c.DefaultRole == RoleNone {
		return RoleDeveloper
	}
	return c.DefaultRole
}

// client returns a go-github client over hc, at --github-api-url when set.
func (c *GitHubConfig) client(hc *http.Client) (*github.Client, error) {
	gh := github.NewClient(hc)
	if c.APIURL != "" {
		var err error
		if gh, err = gh.WithEnterpriseURLs(c.APIURL, c.APIURL); err != nil {
			return nil, fmt.Errorf("--github-api-url: %w", err)
		}
	}
	return gh, nil
}

// checkAppToken asks GitHub whether token was issued to this cluster's OAuth app
// (POST /applications/{client_id}/token, with the app's id and secret).
func (c *GitHubConfig) checkAppToken(ctx context.Context, token string) error {
	hc := *c.httpClient()
	hc.Transport = &github.BasicAuthTransport{Username: c.ClientID, Password: c.ClientSecret, Transport: hc.Transport}
	app, err := c.client(&hc)
	if err != nil {
		return err
	}
	_, resp, err := app.Authorizations.Check(ctx, c.ClientID, token)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return &ForeignTokenError{ClientID: c.ClientID}
	}
	if err != nil {
		return fmt.Errorf("ask GitHub whether the token is this app's: %w", err)
	}
	return nil
}

// OldTokenError: a token a GitHub sign-in made before v9 recorded GitHub user ids.
type OldTokenError struct{ Login string }

func (e *OldTokenError) Error() string {
	return fmt.Sprintf("this token of GitHub user %s was made before v9 recorded GitHub user ids, so it cannot tell whether %s still holds the login: refused; sign in again (`v9 login --github`, or the console)", e.Login, e.Login)
}

// stillAllowed says, from the lists and bindings alone, whether the GitHub user (login, id)
// a token was issued to is let in, and with which role at most: an admin, a listed user,
// or anyone when organizations are allowed (membership is checked with GitHub at sign-in,
// not at every request). A bare entry lets the token in only while its login is bound to
// the token's id.
func (c *GitHubConfig) stillAllowed(login string, id int64) (Role, error) {
	if id == 0 {
		return RoleNone, &OldTokenError{Login: login}
	}
	lists := c.lists()
	ok, _, conflict := c.lookup(lists.admins, login, id, false)
	if ok {
		return RoleAdmin, nil
	}
	ok, _, conflictUser := c.lookup(lists.users, login, id, false)
	if ok || len(c.AllowedOrgs) > 0 {
		return c.defaultRole(), nil
	}
	if conflict != nil {
		return RoleNone, conflict
	}
	if conflictUser != nil {
		return RoleNone, conflictUser
	}
	return RoleNone, fmt.Errorf("GitHub user %s (id %d) is no longer let in to this cluster (not in --admins or --github-allowed-users, and no organization is allowed)", login, id)
}
