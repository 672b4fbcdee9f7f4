package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/velocity9/v9/auth"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
)

// deviceLoginTimeout bounds the whole device flow (GitHub's codes last 15 minutes).
const deviceLoginTimeout = 20 * time.Minute

var errExpiredCode = errors.New("the code expired before it was entered at GitHub: run `v9 login` again")

// githubLogin signs the user in with GitHub's device flow and exchanges the GitHub token
// for a v9 token (ACLService.GitHubLogin), which it keeps in the token file.
func githubLogin(cmd *cobra.Command, a *app) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), deviceLoginTimeout)
	defer cancel()
	c := a.client()
	methods, err := c.ACL.AuthMethods(ctx, connect.NewRequest(&aclv1.AuthMethodsRequest{}))
	if err != nil {
		return err
	}
	gh := methods.Msg.Github
	if gh == nil {
		return usageError{errors.New("this cluster does not sign users in with GitHub: use `v9 login --token SECRET` with a token from an admin (`v9 token create`)")}
	}
	cfg := auth.GitHubOAuth2(gh.ClientId, "", gh.WebUrl, "")
	cfg.Scopes = gh.Scopes
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return fmt.Errorf("ask GitHub for a device code: %w", err)
	}
	out := cmd.ErrOrStderr() // stdout stays for the result (--json)
	fmt.Fprintf(out, "To sign in, open %s and enter the code %s\nWaiting for GitHub (the code expires at %s)...\n",
		da.VerificationURI, da.UserCode, da.Expiry.Local().Format(time.Kitchen))
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			switch re.ErrorCode {
			case "expired_token":
				return errExpiredCode
			case "access_denied":
				return errors.New("the sign-in was cancelled at GitHub: run `v9 login` again to retry")
			}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// oauth2 stops polling at the code's expiry by itself.
			if !da.Expiry.IsZero() && !time.Now().Before(da.Expiry) {
				return errExpiredCode
			}
			return errors.New("gave up waiting for GitHub: run `v9 login` again")
		}
		return fmt.Errorf("sign in with GitHub: %w", err)
	}
	res, err := c.ACL.GitHubLogin(ctx, connect.NewRequest(&aclv1.GitHubLoginRequest{GithubToken: tok.AccessToken, Name: "v9 login"}))
	if err != nil {
		return err
	}
	path, err := writeTokenFile(res.Msg.Secret)
	if err != nil {
		return err
	}
	if a.json {
		res.Msg.Secret = ""
		return printJSON(cmd.OutOrStdout(), res.Msg)
	}
	expires := ""
	if et := res.Msg.Token.GetExpireTime(); et != nil {
		expires = ", expires " + et.AsTime().Local().Format(time.DateTime)
	}
	if w := res.Msg.Warning; w != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "logged in as GitHub user %s (role %s, token %s%s); token kept in %s\n",
		res.Msg.Login, res.Msg.Token.GetRole(), res.Msg.Token.GetAccessorId(), expires, path)
	return err
}
