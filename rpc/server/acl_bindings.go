package server

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// bindings are the GitHub login bindings of the cluster that signs users in with GitHub.
func (s *ACL) bindings() (auth.Bindings, error) {
	gh := s.B.GitHubSignIn()
	if !gh.Enabled() || gh.Bindings == nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("this cluster does not sign users in with GitHub (no --github-client-id): no login is bound"))
	}
	return gh.Bindings, nil
}

func (s *ACL) ListGitHubBindings(context.Context, *connect.Request[aclv1.ListGitHubBindingsRequest]) (*connect.Response[aclv1.ListGitHubBindingsResponse], error) {
	b, err := s.bindings()
	if err != nil {
		return nil, err
	}
	resp := &aclv1.ListGitHubBindingsResponse{}
	for _, x := range b.GithubBindings() {
		resp.Bindings = append(resp.Bindings, &aclv1.GitHubBinding{Login: x.Login, GithubUserId: x.GithubUserId, CreateTime: x.CreateTime})
	}
	return connect.NewResponse(resp), nil
}

func (s *ACL) DeleteGitHubBinding(ctx context.Context, req *connect.Request[aclv1.DeleteGitHubBindingRequest]) (*connect.Response[aclv1.DeleteGitHubBindingResponse], error) {
	b, err := s.bindings()
	if err != nil {
		return nil, err
	}
	e, err := auth.ParseListEntry(req.Msg.Login)
	if err != nil || e.ID != 0 {
		return nil, invalidArg(fmt.Errorf("unbind needs a GitHub login: %q is not one", req.Msg.Login))
	}
	old, ok := b.GithubBinding(e.Login)
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("GitHub login %s is bound to no user id (see `v9 acl bindings`)", e.Login))
	}
	// This node lets the next user of the login sign in from the answer on.
	idx, err := s.applyHere(ctx, &statev1.Command{Op: &statev1.Command_DeleteGithubBinding{DeleteGithubBinding: &statev1.DeleteGithubBinding{Login: e.Login}}})
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&aclv1.DeleteGitHubBindingResponse{Index: idx, GithubUserId: old.GithubUserId}), nil
}
