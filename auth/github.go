package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	// AllowedUsers and AllowedOrgs say who may sign in: a listed login, or a member of a
	// listed organization. Admins may always. With neither list, only Admins may sign in.
	AllowedUsers, AllowedOrgs []string
	// Admins are the logins that get the admin role; everyone else gets DefaultRole.
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
	if c.DefaultRole == RoleNone {
		c.DefaultRole = RoleDeveloper
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
	Role  Role
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
	if login == "" {
		return nil, errors.New("GitHub answered /user without a login")
	}
	id := &Identity{Login: login, Role: c.DefaultRole, token: token}
	if id.Role == RoleNone {
		id.Role = RoleDeveloper
	}
	if hasFold(c.Admins, login) {
		id.Role = RoleAdmin
		return id, nil
	}
	if hasFold(c.AllowedUsers, login) {
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
				if hasFold(c.AllowedOrgs, o.GetLogin()) {
					return id, nil
				}
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
	}
	return nil, &RefusedError{Login: login}
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

// stillAllowed says, from the lists alone, whether login is let in and with which role at
// most: an admin, a listed user, or anyone when organizations are allowed (membership is
// checked with GitHub at sign-in, not at every request).
func (c *GitHubConfig) stillAllowed(login string) (Role, bool) {
	def := c.DefaultRole
	if def == RoleNone {
		def = RoleDeveloper
	}
	switch {
	case hasFold(c.Admins, login):
		return RoleAdmin, true
	case hasFold(c.AllowedUsers, login), len(c.AllowedOrgs) > 0:
		return def, true
	}
	return RoleNone, false
}

func hasFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(strings.TrimSpace(x), s) })
}
