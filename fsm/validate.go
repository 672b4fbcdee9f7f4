package fsm

import (
	"regexp"
	"strings"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// MaxReplicas bounds scale.max so a typo cannot ask for a million instances.
const MaxReplicas = 1000

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envKey   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
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

// ValidSpec checks a component spec for the given runtime.
func ValidSpec(rt statev1.Runtime, s *statev1.ComponentSpec) error {
	if s == nil {
		return invalid("spec is missing")
	}
	if s.ScaleMax == 0 {
		return invalid("scale.max must be at least 1")
	}
	if s.ScaleMax > MaxReplicas {
		return invalid("scale.max %d exceeds the limit of %d", s.ScaleMax, MaxReplicas)
	}
	if s.ScaleMin > s.ScaleMax {
		return invalid("scale.min %d is greater than scale.max %d", s.ScaleMin, s.ScaleMax)
	}
	if s.Exclusive && s.ScaleMax > 1 {
		return invalid("an exclusive component runs at most one instance: scale.max must be 1, not %d", s.ScaleMax)
	}
	if rt == statev1.Runtime_RUNTIME_CONTAINER && s.ScaleMin == 0 {
		return invalid("a container component cannot scale to zero: scale.min must be at least 1")
	}
	for _, k := range sortedKeys(s.Env) { // sorted: every replica reports the same key
		if !envKey.MatchString(k) {
			return invalid("env key %q is not a valid variable name", k)
		}
		if strings.HasPrefix(k, "V9_") {
			return invalid("env key %q: the V9_ prefix is reserved", k)
		}
	}
	if s.Wasm != nil && s.Wasm.Build != "" && s.Wasm.Build != "go" {
		return invalid("wasm.build %q is not supported (only \"go\")", s.Wasm.Build)
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
