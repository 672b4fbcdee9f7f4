package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// JoinRole is the role of a join token: it lets one new node receive its certificate
// (v9 agent --join-token) and nothing else; it is never accepted as an API token.
const JoinRole = "join"

// TokenByID finds a token record by accessor id (fsm.Store does).
type TokenByID interface {
	Token(id string) (*statev1.ApiToken, error)
}

// ForwardedPrincipal authenticates the credentials a forwarding node passed on with a call
// (auth.Forward sends the original caller's Authorization header): the user, token or
// session the write serves, nil when the call carried none (the node's own write).
func (a *Authorizer) ForwardedPrincipal(ctx context.Context) (*Principal, error) {
	c := credentials(ctx)
	if c == "" {
		return nil, nil
	}
	return a.tokenPrincipal(ctx, BearerSecret(c))
}

// CheckForwarded decides whether a command that another node (peer, by its certificate)
// forwarded to the leader may be applied, so that a node certificate alone never writes on
// a user's behalf. p is the principal of the forwarded credentials (ForwardedPrincipal),
// nil when there were none. With p, the command needs p's role for its kind, and its actor
// is p's (a forged actor is overwritten). Without p, only what a node writes on its own
// account passes: its own registration and observed state (the caller checks the node
// ids), token last-use times, the pending deployment of a signed webhook push, a GitHub
// sign-in's session, deleting a session and consuming a join token.
func CheckForwarded(cmd *statev1.Command, peer string, p *Principal, tokens TokenByID) error {
	if p != nil {
		need, err := commandRole(cmd, p, tokens)
		if err != nil {
			return err
		}
		if p.Role < need {
			return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s needs the %s role; %s has the %s role", commandName(cmd), need, p.Describe(), p.Role))
		}
		cmd.Actor = p.Actor()
		return nil
	}
	deny := func(why string) error {
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s forwarded by node %q without the caller's credentials refused: %s", commandName(cmd), peer, why))
	}
	switch op := cmd.Op.(type) {
	case *statev1.Command_RegisterNode, *statev1.Command_SetPlacementObserved, *statev1.Command_TouchApiTokens,
		*statev1.Command_AclBootstrap: // once per cluster: the state machine refuses a second
		cmd.Actor = ""
		return nil
	case *statev1.Command_CreateDeployment:
		d := op.CreateDeployment.GetDeployment()
		if d.GetStatus() != statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING || d.GetCommitSha() == "" ||
			d.GetArtifactDigest() != "" || d.GetSpec() != nil || d.GetDeliveryId() == "" {
			return deny("a node records only the pending build of a webhook push")
		}
		cmd.Actor = ""
		return nil
	case *statev1.Command_CreateApiToken:
		if k := op.CreateApiToken.GetToken(); k.GetGithubLogin() != "" && k.GetRole() != JoinRole {
			return nil // a GitHub sign-in: the caller checks it with GitHub (VouchSignIn)
		}
		return deny("creating a token needs the caller's token")
	case *statev1.Command_DeleteApiToken:
		if k, err := tokens.Token(op.DeleteApiToken.GetId()); err == nil && k.Session {
			return nil // sign-out, or pruning expired sessions
		}
		return deny("a node deletes only console sessions")
	case *statev1.Command_RevokeApiToken:
		if k, err := tokens.Token(op.RevokeApiToken.GetId()); err == nil && k.Role == JoinRole {
			cmd.Actor = ""
			return nil // a join token used up
		}
		return deny("a node revokes only join tokens it has used")
	}
	return deny("it needs a user's token")
}

// commandRole is the least role a user needs for the write cmd does.
func commandRole(cmd *statev1.Command, p *Principal, tokens TokenByID) (Role, error) {
	switch op := cmd.Op.(type) {
	case *statev1.Command_CreateComponent, *statev1.Command_UpdateComponentSpec, *statev1.Command_SetComponentDesired,
		*statev1.Command_ScaleComponent, *statev1.Command_DeleteComponent, *statev1.Command_CreateLinkedComponent,
		*statev1.Command_CreateDeployment, *statev1.Command_SetDeploymentStatus, *statev1.Command_ActivateDeployment,
		*statev1.Command_PutGithubLink, *statev1.Command_DeleteGithubLink, *statev1.Command_PutSecret, *statev1.Command_DeleteSecret:
		return RoleDeveloper, nil
	case *statev1.Command_SetNodeStatus, *statev1.Command_RemoveNode, *statev1.Command_CreateUser,
		*statev1.Command_RegisterNode, *statev1.Command_DeleteGithubBinding:
		return RoleAdmin, nil
	case *statev1.Command_AclBootstrap, *statev1.Command_TouchApiTokens:
		return RoleViewer, nil
	case *statev1.Command_CreateApiToken:
		if op.CreateApiToken.GetToken().GetRole() == JoinRole {
			return RoleAdmin, nil
		}
		r, err := ParseRole(op.CreateApiToken.GetToken().GetRole())
		if err != nil {
			return RoleNone, connect.NewError(connect.CodeInvalidArgument, err)
		}
		return r, nil
	case *statev1.Command_DeleteApiToken:
		return ownOrAdmin(op.DeleteApiToken.GetId(), p, tokens), nil
	case *statev1.Command_RevokeApiToken:
		return ownOrAdmin(op.RevokeApiToken.GetId(), p, tokens), nil
	case *statev1.Command_PutPlacements, *statev1.Command_DeletePlacements, *statev1.Command_SetPlacementObserved:
		return RoleNone, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s is written by the nodes themselves, never for a user", commandName(cmd)))
	}
	return RoleNone, connect.NewError(connect.CodePermissionDenied, errors.New("unknown command: refused"))
}

// ownOrAdmin is the role needed to delete or revoke token id: any for one's own token (or
// one made by the caller), admin for others'.
func ownOrAdmin(id string, p *Principal, tokens TokenByID) Role {
	k, err := tokens.Token(id)
	if err != nil {
		return RoleAdmin
	}
	if k.Id == p.Token || (k.Creator != "" && k.Creator == p.Actor()) || SameGitHubUser(p, k) {
		return RoleViewer
	}
	return RoleAdmin
}

// SameGitHubUser says whether a GitHub sign-in issued token k to the user p is: the same
// GitHub user id (a login is only a name, and a freed one is someone else's).
func SameGitHubUser(p *Principal, k *statev1.ApiToken) bool {
	return p.Kind == KindUser && p.GitHubID != 0 && k.GetGithubUserId() == p.GitHubID
}

// commandName names a command's kind in an error ("CreateComponent").
func commandName(cmd *statev1.Command) string {
	if cmd.Op == nil {
		return "an empty command"
	}
	return string(cmd.ProtoReflect().WhichOneof(cmd.ProtoReflect().Descriptor().Oneofs().ByName("op")).Message().Name())
}

// VouchSignIn checks, on the leader, a GitHub sign-in's token that another node forwarded
// without a user's credentials: the GitHub access token it passed on (GitHubProofHeader)
// must belong, by GitHub's own answer, to the login and GitHub user id the token is for,
// who must be let in with at least the token's role. Whether the sign-in binds the login
// is decided here again, from the leader's state. A node certificate alone thus mints no
// session.
func (c *GitHubConfig) VouchSignIn(ctx context.Context, cmd *statev1.Command, peer string) error {
	k := cmd.GetCreateApiToken().GetToken()
	if k.GetGithubLogin() == "" {
		return nil
	}
	deny := func(why string) error {
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("sign-in of GitHub user %s forwarded by node %q refused: %s", k.GithubLogin, peer, why))
	}
	proof := githubProof(ctx)
	if proof == "" || !c.Enabled() {
		return deny("no GitHub token came with it")
	}
	id, err := c.Identify(ctx, proof)
	if err != nil {
		return deny(err.Error())
	}
	role, err := ParseRole(k.Role)
	if !strings.EqualFold(id.Login, k.GithubLogin) || id.ID != k.GithubUserId || err != nil || role > id.Role {
		return deny(fmt.Sprintf("GitHub says the token is %s's (id %d), with the %s role here", id.Login, id.ID, id.Role))
	}
	cmd.GetCreateApiToken().BindGithubLogin = id.bind
	return nil
}
