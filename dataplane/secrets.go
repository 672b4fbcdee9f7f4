package dataplane

import (
	"context"
	"fmt"
	"maps"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// SecretOpener decrypts one sealed secret of the state. The node implements it with the
// cluster keyring, fetching over mTLS a key it lacks.
type SecretOpener interface {
	OpenSecret(ctx context.Context, s *statev1.Secret) ([]byte, error)
}

// env is the environment an instance of c with spec s starts with: the spec's env, then c's secrets
// (a secret wins over a spec variable of the same name). A secret that does not open fails
// the start: an instance never runs with a missing or garbled secret. The values are
// never logged; errors name the secret, not its value.
func (dp *DataPlane) env(ctx context.Context, c *statev1.Component, s *statev1.ComponentSpec) (map[string]string, error) {
	secrets := dp.state().Secrets(c.Id)
	if len(secrets) == 0 {
		return s.GetEnv(), nil
	}
	env := maps.Clone(s.GetEnv())
	if env == nil {
		env = map[string]string{}
	}
	for _, s := range secrets {
		if dp.cfg.Secrets == nil {
			return nil, fmt.Errorf("secret %s is unreadable: this node has no keyring", s.Name)
		}
		v, err := dp.cfg.Secrets.OpenSecret(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("secret %s is unreadable: %w", s.Name, err)
		}
		env[s.Name] = string(v)
	}
	return env, nil
}
