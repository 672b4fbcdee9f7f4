package ghub

import (
	"net/url"
	"strings"

	"github.com/google/go-github/v60/github"
)

// githubStatus is a commit status before it becomes go-github's RepoStatus.
type githubStatus struct {
	State, Description, Context, TargetURL string
}

func (s *githubStatus) toGitHub() *github.RepoStatus {
	st := &github.RepoStatus{State: &s.State, Description: &s.Description, Context: &s.Context}
	if s.TargetURL != "" {
		st.TargetURL = &s.TargetURL
	}
	return st
}

// consolePage is the console's page of component name under publicURL (the web console's
// route /components/:name), "" without a public URL.
func consolePage(publicURL, name string) string {
	if publicURL == "" {
		return ""
	}
	return strings.TrimRight(publicURL, "/") + "/components/" + url.PathEscape(name)
}
