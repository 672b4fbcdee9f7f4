package ghub

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Config says how a node talks to GitHub. The token is read again from TokenFile at
// every client construction, so a rotated GitHub App installation token is picked up.
type Config struct {
	// APIURL is the REST API's base URL: "" for api.github.com, or a GitHub Enterprise
	// (or test) server such as "https://github.example.com/api/v3/".
	APIURL string
	// Token is a personal access token or a GitHub App installation token.
	Token string
	// TokenFile holds the token instead of Token (trailing white space is ignored).
	TokenFile string
	// WebhookURL is the public URL GitHub posts webhooks to (any node's API port, path
	// /github/webhook). Empty: the node's advertised API address is used.
	WebhookURL string
}

// ErrNoToken: the cluster has no GitHub token configured.
var ErrNoToken = errors.New("no GitHub token configured: start the agents with --github-token or --github-token-file")

// Configured reports whether a token is set up.
func (c Config) Configured() bool { return c.Token != "" || c.TokenFile != "" }

// ReadToken returns the token, from TokenFile when one is given.
func (c Config) ReadToken() (string, error) {
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", fmt.Errorf("read github token file: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("github token file %s is empty", c.TokenFile)
	}
	if c.Token == "" {
		return "", ErrNoToken
	}
	return c.Token, nil
}

// NewClient returns a go-github client authenticated with the configured token and
// pointed at APIURL. hc may be nil.
func NewClient(c Config, hc *http.Client) (*github.Client, error) {
	token, err := c.ReadToken()
	if err != nil {
		return nil, err
	}
	gh := github.NewClient(hc).WithAuthToken(token)
	if c.APIURL != "" {
		if gh, err = gh.WithEnterpriseURLs(c.APIURL, c.APIURL); err != nil {
			return nil, fmt.Errorf("github api url %q: %w", c.APIURL, err)
		}
	}
	return gh, nil
}

// SplitRepo splits "owner/repo".
func SplitRepo(full string) (owner, repo string, err error) {
	owner, repo, ok := strings.Cut(full, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return "", "", fmt.Errorf("repository %q must look like owner/repo", full)
	}
	return owner, repo, nil
}

// repoClient is the installation's client for the repository fullName ("owner/repo"), with
// its owner and name; ok is false, and the reason logged as msg with attrs, when it cannot
// be made (a malformed name is not logged: links are checked when made).
func (s *Service) repoClient(fullName, msg string, attrs ...any) (gh *github.Client, owner, repo string, ok bool) {
	owner, repo, err := SplitRepo(fullName)
	if err != nil {
		return nil, "", "", false
	}
	if gh, err = NewClient(s.o.GitHub, nil); err != nil {
		s.log.Warn(msg, append(append([]any{"repo", fullName}, attrs...), "err", err)...)
		return nil, "", "", false
	}
	return gh, owner, repo, true
}
