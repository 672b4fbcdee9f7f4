package main

import (
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
)

func newNodesCmd(a *app) *cobra.Command {
	cmd := group("nodes", "List nodes and drain them", "node")
	cmd.AddCommand(newNodesListCmd(a), newNodesDrainCmd(a))
	return cmd
}

func newNodesListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List nodes: status, runtimes, placements and last heartbeat",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.client().Cluster.Nodes(cmd.Context(), connect.NewRequest(&clusterv1.NodesRequest{}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			now := time.Now()
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tSTATUS\tRUNTIMES\tPLACEMENTS\tRUNNING\tHEARTBEAT\tAPI ADDR\tPROXY ADDR")
			for _, info := range res.Msg.GetNodes() {
				nd := info.GetNode()
				var rts []string
				for _, rt := range nd.GetRuntimes() {
					rts = append(rts, runtimeName(rt))
				}
				hb := "-"
				if t := info.GetLastHeartbeat(); t != nil {
					hb = fmt.Sprintf("%dms ago", now.Sub(t.AsTime()).Milliseconds())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", nd.GetId(), enumWord(nd.GetStatus().String(), "NODE_STATUS_"),
					orDash(strings.Join(rts, ",")), info.GetPlacements(), info.GetRunning(), hb, orDash(nd.GetApiAddr()), orDash(nd.GetProxyAddr()))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if res.Msg.GetLeaderId() == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "no leader answered: heartbeat times are unknown")
			}
			return nil
		},
	}
}

func newNodesDrainCmd(a *app) *cobra.Command {
	var undo bool
	cmd := &cobra.Command{
		Use:   "drain ID",
		Short: "Move every placement off a node (replacements first) and keep new ones off it",
		Long: `Mark a node draining: the scheduler starts a replacement elsewhere for each of its
placements, stops the node's own instance once the replacement runs, and places nothing new
on it. --undo makes it ready again.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().Cluster.Drain(cmd.Context(), connect.NewRequest(&clusterv1.DrainRequest{NodeId: args[0], Undo: undo}))
			if err != nil {
				return err
			}
			if undo {
				return a.report(cmd, res.Msg, "%s is ready again (index %d)", args[0], res.Msg.GetIndex())
			}
			return a.report(cmd, res.Msg, "%s is draining (index %d); see v9 nodes list", args[0], res.Msg.GetIndex())
		},
	}
	cmd.Flags().BoolVar(&undo, "undo", false, "end the drain: the node takes placements again")
	return cmd
}
