package auth

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// GrantStore finds a token or session by accessor id (fsm.Store).
type GrantStore interface {
	Token(id string) (*statev1.ApiToken, error)
}

// GrantOpener opens a value sealed with the cluster keyring (the node implements it).
type GrantOpener interface {
	OpenSecret(ctx context.Context, s *statev1.Secret) ([]byte, error)
}

// KeepGitHubGrant is IssueUserToken's keep for a GitHub sign-in (the console's web flow or
// `v9 login`'s device flow): it seals the user's GitHub token with the cluster keyring into
// the new token's record, for the Start flow to list the user's repositories; no read API
// returns it, and it goes with the token. Sealing that fails keeps none (signing in still
// works; the Start flow asks to sign in again) and is reported to failed; a nil g keeps none.
func KeepGitHubGrant(ctx context.Context, g GrantSealer, githubToken string, failed func(error)) func(*statev1.ApiToken) {
	return func(k *statev1.ApiToken) {
		if g == nil || githubToken == "" {
			return
		}
		var err error
		if k.GithubTokenKeyId, k.GithubTokenNonce, k.GithubToken, err = g.SealSecret(ctx, GrantOwner(k.Id), GitHubGrantName, []byte(githubToken)); err != nil {
			k.GithubTokenKeyId, k.GithubTokenNonce, k.GithubToken = "", nil, nil
			if failed != nil {
				failed(err)
			}
		}
	}
}

// ErrNoGrant: the caller's credentials keep no GitHub grant.
var ErrNoGrant = errors.New("this sign-in keeps no GitHub grant: sign in with GitHub (the console's sign-in, or `v9 login`); API tokens cannot list your repositories")

// CallerGitHubToken returns the GitHub OAuth token kept, sealed, with the session the
// request ctx came with (WebSignIn.Grants). A caller without one gets FailedPrecondition
// saying to sign in with GitHub.
func CallerGitHubToken(ctx context.Context, tokens GrantStore, open GrantOpener) (string, error) {
	p := FromContext(ctx)
	if p == nil || p.Token == "" {
		return "", connect.NewError(connect.CodeFailedPrecondition, ErrNoGrant)
	}
	k, err := tokens.Token(p.Token)
	if err != nil || len(k.GithubToken) == 0 {
		return "", connect.NewError(connect.CodeFailedPrecondition, ErrNoGrant)
	}
	b, err := open.OpenSecret(ctx, &statev1.Secret{ComponentId: GrantOwner(k.Id), Name: GitHubGrantName,
		KeyId: k.GithubTokenKeyId, Nonce: k.GithubTokenNonce, Ciphertext: k.GithubToken})
	if err != nil {
		return "", connect.NewError(connect.CodeUnavailable, errors.New("the GitHub grant of this session cannot be opened on this node: "+err.Error()))
	}
	return string(b), nil
}
