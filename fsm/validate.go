package fsm

import (
	"regexp"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/spec"
)

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
)

// ValidName reports whether name can be a component name: a DNS label (RFC 1123), because
// the proxy routes by <name>.<domain>.
func ValidName(name string) error {
	if !dnsLabel.MatchString(name) {
		return invalid("name %q must be a DNS label: 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// ValidSpec checks a component spec for the given runtime with package spec's rules, the
// same the manifest, the CLI and the API check.
func ValidSpec(rt statev1.Runtime, s *statev1.ComponentSpec) error {
	if ps := spec.Check(rt, s); len(ps) > 0 {
		return invalid("%s", spec.Error(ps))
	}
	return nil
}

func validRuntime(rt statev1.Runtime) error {
	switch rt {
	case statev1.Runtime_RUNTIME_WASM, statev1.Runtime_RUNTIME_CONTAINER:
		return nil
	}
	return invalid("runtime must be wasm or container")
}

func validSource(s *statev1.Source) error {
	if s == nil || s.GithubRepo == "" {
		return nil
	}
	if !repoName.MatchString(s.GithubRepo) {
		return invalid("source repository %q must look like owner/repo", s.GithubRepo)
	}
	if s.Branch == "" {
		return invalid("source repository %q needs a branch", s.GithubRepo)
	}
	return nil
}
