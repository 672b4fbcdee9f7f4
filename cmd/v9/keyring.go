package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/velocity9/v9/rpc/server"
)

// newKeyringCmd is `v9 operator keyring`: list, rotate and remove the cluster keyring's
// root keys (admin).
func newKeyringCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keyring",
		Short: "The root keys that seal secrets: list, rotate, remove old ones (admin)",
		Long: `The cluster keyring's root keys (AES-256-GCM) seal component secrets, webhook secrets and
stored GitHub tokens. 'rotate' makes a new active key on the node at --addr and has every
other node take it; old keys stay to read what they sealed, and a value is sealed with the
active key when it is next written. 'remove ID' forgets an old key on every node once
nothing sealed with it is left ('list' shows each key's uses).`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRun,
	}
	call := func(cmd *cobra.Command, method, path string) error {
		resp, err := a.client().Do(cmd.Context(), method, path)
		if err != nil {
			return fmt.Errorf("cannot reach a v9 node at %s: %w", a.addr, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", strings.TrimSpace(string(b)))
		}
		if a.json {
			_, err := cmd.OutOrStdout().Write(b)
			return err
		}
		var ans server.KeyringAnswer
		if err := json.Unmarshal(b, &ans); err != nil {
			return fmt.Errorf("the node's answer: %w", err)
		}
		tw := newTable(cmd.OutOrStdout())
		fmt.Fprintln(tw, "KEY\tCREATED\tACTIVE\tSEALS")
		for _, k := range ans.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\n", k.ID, k.Created.UTC().Format(time.RFC3339), k.Active, k.Uses)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		printMissingKeys(cmd.OutOrStdout(), ans.Missing)
		if len(ans.Unreachable) > 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "not reached (they take the change when they next fetch keys): %s\n", strings.Join(ans.Unreachable, ", "))
		}
		return nil
	}
	cmd.AddCommand(
		&cobra.Command{Use: "list", Short: "List the root keys with what each seals", Args: exactArgs(),
			RunE: func(cmd *cobra.Command, _ []string) error { return call(cmd, http.MethodGet, server.KeyringPath) }},
		&cobra.Command{Use: "rotate", Short: "Make a new active root key on every node", Args: exactArgs(),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return call(cmd, http.MethodPost, server.KeyringRotatePath)
			}},
		&cobra.Command{Use: "remove ID", Short: "Forget an old root key once nothing uses it", Args: exactArgs("ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return call(cmd, http.MethodDelete, server.KeyringKeyPath+args[0])
			}},
	)
	return cmd
}

// printMissingKeys says which sealed values no node can open, and how to bring their keys back.
func printMissingKeys(w io.Writer, missing map[string]int) {
	for _, id := range slices.Sorted(maps.Keys(missing)) {
		fmt.Fprintf(w, "key %s, which seals %d value(s), is held by no node: put the keyring.json of a node of the cluster that made it into a node's data dir (see docs/operating.md, Backup and restore)\n", id, missing[id])
	}
}

// warnMissingKeys tells, after a restore, of the restored secrets no node can open.
func warnMissingKeys(cmd *cobra.Command, a *app) {
	resp, err := a.client().Do(cmd.Context(), http.MethodGet, server.KeyringPath)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var ans server.KeyringAnswer
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans) != nil {
		return
	}
	printMissingKeys(cmd.ErrOrStderr(), ans.Missing)
}
