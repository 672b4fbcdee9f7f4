package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

func newComponentCmd(a *app) *cobra.Command {
	cmd := group("component", "Create, inspect and change components", "components", "c")
	cmd.AddCommand(
		newComponentCreateCmd(a),
		newComponentGetCmd(a),
		newComponentListCmd(a),
		newComponentUpdateCmd(a),
		newComponentPauseCmd(a),
		newComponentResumeCmd(a),
		newComponentScaleCmd(a),
		newComponentDeleteCmd(a),
		newComponentRollbackCmd(a),
		newStatsCmd(a), // also `v9 stats`
	)
	return cmd
}

func newComponentCreateCmd(a *app) *cobra.Command {
	var (
		runtime, github, branch, owner string
		poll                           time.Duration
		spec                           specFlags
	)
	cmd := &cobra.Command{
		Use:   "create NAME --runtime wasm|container [flags]",
		Short: "Create a component",
		Long: `Create a component. NAME is a DNS label (lower-case letters, digits and '-').
Without --min and --max the component runs one replica.

With --github owner/repo the component is built from that repository (the agents need
--github-token): the leader creates a push webhook on the repository, deploys the head of
--branch at once, and then every push to it. The repository's v9.toml gives the spec;
--runtime defaults to wasm. With --poll the leader checks the branch instead of receiving
webhooks, for clusters GitHub cannot reach.`,
		Example: `  v9 component create hello --runtime wasm --wasm-module hello.wasm --env GREETING=hi
  v9 component create api --runtime container --image docker.io/library/python:3.12-alpine \
      --command python --command /app/main.py --min 2 --max 5 --memory 256Mi --timeout 30s
  v9 component create site --github owner/site --branch main
  v9 component create site --github owner/site --poll 30s`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if github != "" && runtime == "" {
				runtime = "wasm"
			}
			rt, err := parseRuntime(runtime)
			if err != nil {
				return usageError{err}
			}
			req := &componentv1.CreateRequest{Name: args[0], Owner: owner, Runtime: rt, Spec: &statev1.ComponentSpec{}}
			switch {
			case github != "":
				req.Source = &statev1.Source{GithubRepo: github, Branch: branch}
			case cmd.Flags().Changed("branch"):
				return usageError{fmt.Errorf("--branch needs --github")}
			}
			if poll != 0 {
				if github == "" {
					return usageError{fmt.Errorf("--poll needs --github")}
				}
				if poll < time.Second {
					return usageError{fmt.Errorf("--poll %s: want at least 1s", poll)}
				}
				req.PollSeconds = uint32(poll.Round(time.Second) / time.Second)
			}
			if err := spec.apply(cmd.Flags(), rt, req.Spec); err != nil {
				return err
			}
			defaultScale(cmd.Flags(), req.Spec)
			res, err := a.client().Components.Create(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			c := res.Msg.GetComponent()
			if d := res.Msg.GetDeployment(); d != nil {
				return a.report(cmd, res.Msg, "component %q created from %s@%s; deploying %s (deployment %s; follow with `v9 deployments list %s`)",
					c.GetName(), c.GetSource().GetGithubRepo(), c.GetSource().GetBranch(), shortID(d.GetCommitSha()), d.GetId(), c.GetName())
			}
			return a.report(cmd, res.Msg, "component %q created (%s, %s)",
				c.GetName(), runtimeName(c.GetRuntime()), plural(c.GetReplicas(), "replica"))
		},
	}
	f := cmd.Flags()
	f.StringVar(&runtime, "runtime", "", "how the code runs: wasm or container (required, except with --github: wasm)")
	f.StringVar(&github, "github", "", "build from this GitHub repository (owner/repo); default: upload")
	f.StringVar(&branch, "branch", "main", "branch of --github to deploy")
	f.DurationVar(&poll, "poll", 0, "with --github: check the branch this often instead of creating a webhook (e.g. 30s)")
	f.StringVar(&owner, "owner", "", "owner of the component")
	spec.register(f)
	return cmd
}

func newComponentGetCmd(a *app) *cobra.Command {
	var consistent bool
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show one component",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().Components.Get(cmd.Context(), connect.NewRequest(&componentv1.GetRequest{
				Name: args[0],
				Read: readOptions(consistent),
			}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			return printComponent(cmd.OutOrStdout(), res.Msg.GetComponent(), time.Now())
		},
	}
	cmd.Flags().BoolVar(&consistent, "consistent", false, "read through the leader instead of this node's possibly stale copy")
	return cmd
}

func newComponentListCmd(a *app) *cobra.Command {
	var consistent bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List components",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.client().Components.List(cmd.Context(), connect.NewRequest(&componentv1.ListRequest{
				Read: readOptions(consistent),
			}))
			if err != nil {
				return err
			}
			cs := res.Msg.GetComponents()
			if done, err := a.printedList(cmd, res.Msg, len(cs), "No components. Create one with `v9 component create NAME --runtime wasm`."); done {
				return err
			}
			return printComponentTable(cmd.OutOrStdout(), cs, time.Now())
		},
	}
	cmd.Flags().BoolVar(&consistent, "consistent", false, "read through the leader instead of this node's possibly stale copy")
	return cmd
}

// updateTries is how many times `component update` reads and edits a spec that others keep
// changing before it gives up.
const updateTries = 3

func newComponentUpdateCmd(a *app) *cobra.Command {
	var (
		spec specFlags
		roll rollFlags
	)
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a component's spec; flags not given keep their value",
		Long: `Change a component's spec; flags not given keep their value. A change of env, limits or
the module rolls the component's instances (new ones first, then the old ones drain): the
command waits until they run it (--no-wait returns at once). If every new instance fails,
the leader undoes the change and the command fails with the reason; the old instances keep
serving. A change of scale alone restarts nothing.`,
		Example: `  v9 component update hello --max 3
  v9 component update hello --env GREETING=hello --unset-env DEBUG --timeout 10s`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !anyChanged(cmd.LocalNonPersistentFlags(), "no-wait", "rollout-timeout") {
				return usageError{fmt.Errorf("nothing to update: give at least one spec flag")}
			}
			c := a.client()
			// Read, edit, write back only if nobody changed the component meanwhile (another
			// user's edit would be erased); if someone did, read again and redo the edit.
			var res *connect.Response[componentv1.UpdateSpecResponse]
			for try := 1; ; try++ {
				cur, err := c.Components.Get(cmd.Context(), connect.NewRequest(&componentv1.GetRequest{
					Name: args[0],
					Read: readOptions(true),
				}))
				if err != nil {
					return err
				}
				comp := cur.Msg.GetComponent()
				s := comp.GetSpec()
				if s == nil {
					s = &statev1.ComponentSpec{}
				}
				if err := spec.apply(cmd.Flags(), comp.GetRuntime(), s); err != nil {
					return err
				}
				res, err = c.Components.UpdateSpec(cmd.Context(), connect.NewRequest(&componentv1.UpdateSpecRequest{
					Name: args[0], Spec: s, IfModifyIndex: comp.GetModifyIndex(),
				}))
				if err == nil {
					break
				}
				if connect.CodeOf(err) != connect.CodeAborted || try == updateTries {
					if connect.CodeOf(err) == connect.CodeAborted {
						return fmt.Errorf("component %q was changed by someone else %d times while this update was made: nothing was written, run it again", args[0], try)
					}
					return err
				}
			}
			if err := a.report(cmd, res.Msg, "component %q updated", args[0]); err != nil {
				return err
			}
			if si := res.Msg.GetComponent().GetSpecIndex(); si == res.Msg.GetIndex() && !roll.noWait {
				return a.waitRoll(cmd, roll, args[0], si, res.Msg.GetIndex())
			}
			return nil
		},
	}
	spec.register(cmd.Flags())
	roll.register(cmd.Flags())
	return cmd
}

func newComponentPauseCmd(a *app) *cobra.Command {
	return a.actionCmd("pause", "Stop serving a component, keeping its spec and deployments", "NAME", "component %q paused",
		func(ctx context.Context, name string) (connect.AnyResponse, error) {
			return a.client().Components.Pause(ctx, connect.NewRequest(&componentv1.PauseRequest{Name: name}))
		})
}

func newComponentResumeCmd(a *app) *cobra.Command {
	return a.actionCmd("resume", "Serve a paused component again", "NAME", "component %q resumed",
		func(ctx context.Context, name string) (connect.AnyResponse, error) {
			return a.client().Components.Resume(ctx, connect.NewRequest(&componentv1.ResumeRequest{Name: name}))
		})
}

func newComponentScaleCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "scale NAME REPLICAS",
		Short: "Set the wanted number of replicas, within the component's min and max",
		Args:  exactArgs("NAME", "REPLICAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseUint(args[1], 10, 32)
			if err != nil {
				return usageError{fmt.Errorf("replicas %q: want a whole number, 0 or more", args[1])}
			}
			res, err := a.client().Components.Scale(cmd.Context(), connect.NewRequest(&componentv1.ScaleRequest{
				Name:     args[0],
				Replicas: uint32(n),
			}))
			if err != nil {
				return err
			}
			return a.report(cmd, res.Msg, "component %q scaled to %s", args[0], plural(res.Msg.GetComponent().GetReplicas(), "replica"))
		},
	}
}

func newComponentDeleteCmd(a *app) *cobra.Command {
	cmd := a.actionCmd("delete", "Delete a component with its deployments and placements", "NAME", "component %q deleted",
		func(ctx context.Context, name string) (connect.AnyResponse, error) {
			return a.client().Components.Delete(ctx, connect.NewRequest(&componentv1.DeleteRequest{Name: name}))
		})
	cmd.Aliases = []string{"rm"}
	return cmd
}

func newComponentRollbackCmd(a *app) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "rollback NAME [--to DEPLOYMENT]",
		Short: "Serve an earlier ready deployment again",
		Long: `Make an earlier ready deployment active again, with the spec it was deployed with.
Without --to, the newest ready deployment older than the active one is taken. The
deployment history is listed by ` + "`v9 deployments list NAME`" + `.`,
		Example: `  v9 component rollback hello
  v9 component rollback hello --to 3f2a9c0d1e4b5a67`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().Deploy.Rollback(cmd.Context(), connect.NewRequest(&deployv1.RollbackRequest{Component: args[0], DeploymentId: to}))
			if err != nil {
				return err
			}
			d := res.Msg.GetDeployment()
			what := d.GetId()
			if d.GetCommitSha() != "" {
				what += " (" + shortID(d.GetCommitSha()) + ")"
			}
			return a.report(cmd, res.Msg, "component %q rolled back to deployment %s", args[0], what)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the deployment to activate (default: the ready one before the active one)")
	return cmd
}

func readOptions(consistent bool) *componentv1.ReadOptions {
	if !consistent {
		return nil
	}
	return &componentv1.ReadOptions{Consistent: true}
}

// anyChanged reports whether any flag of fs but those named in except was given on the
// command line.
func anyChanged(fs *pflag.FlagSet, except ...string) bool {
	changed := false
	fs.VisitAll(func(f *pflag.Flag) { changed = changed || (f.Changed && !slices.Contains(except, f.Name)) })
	return changed
}
