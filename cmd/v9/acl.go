package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/velocity9/v9/auth"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
)

// tokenFileName is the file under the user's config dir (os.UserConfigDir()/v9) where
// `v9 login` keeps the token.
const tokenFileName = "token"

// tokenFile is where `v9 login` writes the token: $XDG_CONFIG_HOME/v9/token on Linux.
func tokenFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config dir: %w", err)
	}
	return filepath.Join(dir, "v9", tokenFileName), nil
}

// secret is the token this invocation sends: --token, else $V9_TOKEN, else the login file.
func (a *app) secret() string {
	if a.token != "" {
		return a.token
	}
	if s := strings.TrimSpace(os.Getenv("V9_TOKEN")); s != "" {
		return s
	}
	path, err := tokenFile()
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.logger.Warn("read the token file", "path", path, "err", err)
		}
		return ""
	}
	return strings.TrimSpace(string(b))
}

// caFileName is the cluster CA certificate `v9 dev` keeps next to the token, for
// https:// addresses.
const caFileName = "ca.pem"

// caPEM returns the CA certificate the CLI trusts for TLS to the API: --ca, else $V9_CA
// (explicit: an address without a scheme then means https), else the one `v9 dev` wrote.
func (a *app) caPEM() (pem []byte, explicit bool) {
	path := a.caFile
	if path == "" {
		path = os.Getenv("V9_CA")
	}
	explicit = path != ""
	if !explicit {
		dir, err := os.UserConfigDir()
		if err != nil {
			return nil, false
		}
		path = filepath.Join(dir, "v9", caFileName)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if explicit || !errors.Is(err, fs.ErrNotExist) {
			a.logger.Warn("read the CA certificate", "path", path, "err", err)
		}
		return nil, explicit
	}
	return b, explicit
}

// writeCAFile keeps the dev cluster's CA certificate where the CLI finds it.
func writeCAFile(caPEM []byte) error {
	path, err := tokenFile()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(filepath.Dir(path), caFileName), caPEM, 0o644)
}

// writeTokenFile stores secret where the CLI finds it, readable by the user only.
func writeTokenFile(secret string) (string, error) {
	path, err := tokenFile()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write token file: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write token file: %w", err)
	}
	return path, nil
}

func newACLCmd(a *app) *cobra.Command {
	cmd := group("acl", "Bootstrap the cluster's access control")
	var login bool
	boot := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the cluster's first token (admin role); works once per cluster",
		Long: `Create the cluster's first token, with the admin role. It works once per cluster: a
second call fails. The secret is shown once; keep it (v9 login --token SECRET). v9 dev
bootstraps by itself.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.client().ACL.Bootstrap(cmd.Context(), connect.NewRequest(&aclv1.BootstrapRequest{}))
			if err != nil {
				return err
			}
			if login {
				if _, err := writeTokenFile(res.Msg.Secret); err != nil {
					return err
				}
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), res.Msg)
			}
			return printNewToken(cmd.OutOrStdout(), res.Msg.Token, res.Msg.Secret)
		},
	}
	boot.Flags().BoolVar(&login, "login", false, "also keep the token where the CLI finds it (as v9 login does)")
	cmd.AddCommand(boot, newBindingsCmd(a), newUnbindCmd(a))
	return cmd
}

// newBindingsCmd lists which GitHub user id each login listed without one is bound to.
func newBindingsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "bindings",
		Short: "List the GitHub logins of --admins and --github-allowed-users bound to a user id (admin)",
		Long: `A login listed without an id (--admins alice) is bound to the GitHub user id that first
signs in with it: after a rename, whoever takes the freed login is refused. This lists the
bindings; ` + "`v9 acl unbind LOGIN`" + ` drops one. An entry pinned as LOGIN:ID needs no binding.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.client().ACL.ListGitHubBindings(cmd.Context(), connect.NewRequest(&aclv1.ListGitHubBindingsRequest{}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "LOGIN\tGITHUB USER ID\tSINCE")
			for _, b := range res.Msg.Bindings {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", b.Login, b.GithubUserId, when(b.CreateTime, "-"))
			}
			return tw.Flush()
		},
	}
}

// newUnbindCmd drops a login's binding.
func newUnbindCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "unbind LOGIN",
		Short: "Drop a GitHub login's binding: the next user to sign in with it is bound (admin)",
		Long: `Drop the binding of a GitHub login listed without an id: tokens of the user id it was
bound to lose what the login gave them at once, and the next GitHub user to sign in with
the login is bound to it. Do this when the rightful holder of a login has a new id (a
refused sign-in names both ids), or pin the id in the list instead (--admins LOGIN:ID).`,
		Args: exactArgs("LOGIN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().ACL.DeleteGitHubBinding(cmd.Context(), connect.NewRequest(&aclv1.DeleteGitHubBindingRequest{Login: args[0]}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "GitHub login %s is no longer bound to user id %d: the next GitHub user to sign in with it is bound to it\n", args[0], res.Msg.GithubUserId)
			return err
		},
	}
}

func printNewToken(w io.Writer, k *aclv1.Token, secret string) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Accessor ID:\t%s\n", k.GetAccessorId())
	fmt.Fprintf(tw, "Secret:\t%s\n", secret)
	fmt.Fprintf(tw, "Name:\t%s\n", cell(k.GetName()))
	fmt.Fprintf(tw, "Role:\t%s\n", k.GetRole())
	fmt.Fprintf(tw, "Expires:\t%s\n", when(k.GetExpireTime(), "never"))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "The secret is shown only now. Use it with `v9 login --token SECRET` or V9_TOKEN.")
	return err
}

func when(t *timestamppb.Timestamp, none string) string {
	if t == nil {
		return none
	}
	return t.AsTime().Local().Format(time.DateTime)
}

func newTokenCmd(a *app) *cobra.Command {
	cmd := group("token", "Create, list and revoke API tokens")
	var (
		name, role string
		ttl        time.Duration
		join       bool
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a token (its role no higher than yours); the secret is shown once",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl < 0 {
				return usageError{errors.New("--ttl cannot be negative")}
			}
			if ttl > 0 && ttl < time.Second {
				// Sent in whole seconds, it would be 0: a token that never expires.
				return usageError{fmt.Errorf("--ttl %s is under a second, the least a token lives (0 means never expires)", ttl)}
			}
			if join {
				if cmd.Flags().Changed("role") {
					return usageError{errors.New("--join makes a join token: no --role")}
				}
				role = auth.JoinRole
			} else if name == "" {
				return usageError{errors.New("--name is required (what the token is for)")}
			}
			res, err := a.client().ACL.CreateToken(cmd.Context(), connect.NewRequest(&aclv1.CreateTokenRequest{
				Name: name, Role: role, TtlSeconds: uint64(ttl / time.Second),
			}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			if join {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "join token %s (one use, expires %s):\n%s\n\nOn the new machine: v9 agent --id ID --tls-dir DIR --join %s --join-token TOKEN\n",
					res.Msg.Token.GetAccessorId(), res.Msg.Token.GetExpireTime().AsTime().UTC().Format(time.RFC3339), res.Msg.Secret, a.addr)
				return err
			}
			return printNewToken(cmd.OutOrStdout(), res.Msg.Token, res.Msg.Secret)
		},
	}
	f := create.Flags()
	f.StringVar(&name, "name", "", "what the token is for (required, except with --join)")
	f.StringVar(&role, "role", "developer", "viewer, developer or admin")
	f.DurationVar(&ttl, "ttl", 0, "lifetime, e.g. 720h; 0: never expires (--join: default 1h, at most 168h)")
	f.BoolVar(&join, "join", false, "a one-time join token for a new node (admin): v9 agent --join-token")

	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (yours and those you created; every token for an admin)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.client().ACL.ListTokens(cmd.Context(), connect.NewRequest(&aclv1.ListTokensRequest{}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ACCESSOR\tNAME\tROLE\tCREATED\tEXPIRES\tLAST USED\tSTATUS")
			for _, k := range res.Msg.Tokens {
				status := "active"
				switch {
				case k.RevokeTime != nil:
					status = "revoked"
				case k.ExpireTime != nil && !k.ExpireTime.AsTime().After(time.Now()):
					status = "expired"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.AccessorId, cell(k.Name), k.Role,
					when(k.CreateTime, "-"), when(k.ExpireTime, "never"), when(k.LastUsedTime, "-"), status)
			}
			return tw.Flush()
		},
	}
	revoke := a.actionCmd("revoke", "Revoke a token: it is refused from then on", "ACCESSOR", "token %s revoked",
		func(ctx context.Context, id string) (connect.AnyResponse, error) {
			return a.client().ACL.RevokeToken(ctx, connect.NewRequest(&aclv1.RevokeTokenRequest{AccessorId: id}))
		})
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newLoginCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "login [--token SECRET]",
		Short: "Sign in (with GitHub, or a token) and keep the token for the next commands",
		Long: `Without --token, sign in with GitHub's device flow: v9 prints a URL and a code to enter
there, waits until you have approved it, and exchanges your GitHub identity for a v9 token
(the cluster checks with GitHub who you are and whether it lets you in).

With --token, check that token against the cluster at --addr instead.

Either way the token is kept, readable by you only, in the v9 directory of your config dir
(~/.config/v9/token on Linux), where every command finds it. --token or V9_TOKEN, when given,
take precedence over that file.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret := a.token
			if secret == "" {
				return githubLogin(cmd, a)
			}
			res, err := a.client().ACL.WhoAmI(cmd.Context(), connect.NewRequest(&aclv1.WhoAmIRequest{}))
			if err != nil {
				return err
			}
			path, err := writeTokenFile(secret)
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "logged in as %s %s (%s, role %s); token kept in %s\n",
				res.Msg.Kind, res.Msg.Id, res.Msg.Name, res.Msg.Role, path)
			return err
		},
	}
	return cmd
}

func newAuditCmd(a *app) *cobra.Command {
	var limit uint32
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show who changed what and when (the last writes by users and tokens)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.client().ACL.Audit(cmd.Context(), connect.NewRequest(&aclv1.AuditRequest{Limit: limit}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "TIME\tINDEX\tACTOR\tOPERATION\tTARGET")
			for _, e := range res.Msg.Entries {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", when(e.Time, "-"), e.Index, cell(e.Actor), e.Op, cell(orDash(e.Target)))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Uint32Var(&limit, "limit", 50, "entries to show, newest last (0: all kept)")
	return cmd
}
