package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	secretv1 "github.com/velocity9/v9/rpc/gen/v9/secret/v1"
	"github.com/velocity9/v9/rpc/server"
)

func newSecretCmd(a *app) *cobra.Command {
	cmd := group("secret", "Set, list and delete a component's secrets (injected into its environment)")
	var (
		fromFile string
		roll     rollFlags
	)
	set := &cobra.Command{
		Use:   "set COMPONENT KEY",
		Short: "Set a secret from stdin (or --from-file); the component's instances restart with it",
		Long: "Set a secret from stdin (or --from-file). The value is never taken from the command line,\n" +
			"where it would land in shell history and process listings. One trailing newline is dropped.",
		Args: exactArgs("COMPONENT", "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if fromFile != "" {
				f, err := os.Open(fromFile)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			v, err := io.ReadAll(io.LimitReader(r, server.MaxSecretBytes+2))
			if err != nil {
				return fmt.Errorf("read the secret: %w", err)
			}
			v = bytes.TrimSuffix(bytes.TrimSuffix(v, []byte("\n")), []byte("\r"))
			if len(v) > server.MaxSecretBytes {
				return usageError{errors.New("a secret value is at most 64 KiB")}
			}
			res, err := a.client().Secrets.Set(cmd.Context(), connect.NewRequest(&secretv1.SetRequest{Component: args[0], Name: args[1], Value: v}))
			if err != nil {
				return err
			}
			if err := a.report(cmd, res.Msg, "secret %s of %s set", args[1], args[0]); err != nil || roll.noWait {
				return err
			}
			// The set restarts the instances (moves spec_index) when the component runs.
			return a.waitRoll(cmd, roll, args[0], res.Msg.GetIndex(), res.Msg.GetIndex())
		},
	}
	set.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file instead of stdin")
	roll.register(set.Flags())
	list := &cobra.Command{
		Use:   "list COMPONENT",
		Short: "List a component's secrets: names and update times, never values",
		Args:  exactArgs("COMPONENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().Secrets.List(cmd.Context(), connect.NewRequest(&secretv1.ListRequest{Component: args[0]}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tUPDATED")
			for _, s := range res.Msg.Secrets {
				fmt.Fprintf(tw, "%s\t%s\n", s.Name, when(s.UpdateTime, "-"))
			}
			return tw.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete COMPONENT KEY",
		Short: "Delete a secret; the component's instances restart without it",
		Args:  exactArgs("COMPONENT", "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().Secrets.Delete(cmd.Context(), connect.NewRequest(&secretv1.DeleteRequest{Component: args[0], Name: args[1]}))
			if err != nil {
				return err
			}
			return a.report(cmd, res.Msg, "secret %s of %s deleted", args[1], args[0])
		},
	}
	cmd.AddCommand(set, list, del)
	return cmd
}
