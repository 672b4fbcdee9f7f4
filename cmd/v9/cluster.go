package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
)

func newClusterCmd(a *app) *cobra.Command {
	cmd := group("cluster", "Inspect and change the cluster's Raft membership")
	cmd.AddCommand(
		newClusterStatusCmd(a),
		newClusterMembersCmd(a),
		newClusterRemovePeerCmd(a),
		newClusterLeaveCmd(a),
	)
	return cmd
}

func newClusterStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the answering node's view: its Raft state, the leader and the indexes",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.client().Cluster.Status(cmd.Context(), connect.NewRequest(&clusterv1.StatusRequest{}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			return printStatus(cmd.OutOrStdout(), res.Msg)
		},
	}
}

func printStatus(w io.Writer, s *clusterv1.StatusResponse) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Node", s.GetNodeId())
	row("Raft state", orDash(s.GetRaftState()))
	leader := "none (no quorum, or an election is under way)"
	if s.GetLeaderId() != "" {
		leader = s.GetLeaderId()
		if s.GetLeaderApiAddr() != "" {
			leader += " (" + s.GetLeaderApiAddr() + ")"
		}
	}
	row("Leader", leader)
	voters := 0
	for _, m := range s.GetMembers() {
		if m.GetSuffrage() == "voter" {
			voters++
		}
	}
	row("Members", fmt.Sprintf("%d (%d voters)", len(s.GetMembers()), voters))
	row("Applied index", fmt.Sprint(s.GetAppliedIndex()))
	row("Commit index", fmt.Sprint(s.GetCommitIndex()))
	row("Last index", fmt.Sprint(s.GetLastIndex()))
	row("FSM index", fmt.Sprint(s.GetFsmIndex()))
	if !strings.EqualFold(s.GetRaftState(), "leader") {
		row("Last contact", (time.Duration(s.GetLastContactMs())*time.Millisecond).String()+" ago")
	}
	return tw.Flush()
}

func newClusterMembersCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "members",
		Aliases: []string{"peers"},
		Short:   "List the Raft members with their roles and addresses",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.client().Cluster.Status(cmd.Context(), connect.NewRequest(&clusterv1.StatusRequest{}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tROLE\tLEADER\tRAFT ADDR\tAPI ADDR\tSTATUS")
			for _, m := range res.Msg.GetMembers() {
				leader := ""
				if m.GetLeader() {
					leader = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.GetId(), orDash(m.GetSuffrage()), leader,
					orDash(m.GetRaftAddr()), orDash(m.GetApiAddr()), enumWord(m.GetStatus(), "NODE_STATUS_"))
			}
			return tw.Flush()
		},
	}
}

func newClusterRemovePeerCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-peer ID",
		Short: "Remove a node, alive or dead, from the Raft configuration",
		Long: `Remove a node, alive or dead, from the Raft configuration and the state. Its instances
are replaced on the other nodes at once (an exclusive one once the node's lease has run out).
Removing the leader hands leadership over first. A removed node that still runs stops its
instances, its proxy answers 503, and its log says it was removed; restarted with --join it
is added again.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().Cluster.RemovePeer(cmd.Context(), connect.NewRequest(&clusterv1.RemovePeerRequest{NodeId: args[0]}))
			if err != nil {
				return err
			}
			return a.report(cmd, res.Msg, "removed %s from the cluster (index %d)", args[0], res.Msg.GetIndex())
		},
	}
}

func newClusterLeaveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Remove the node at --addr from the cluster",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := a.client()
			st, err := c.Cluster.Status(cmd.Context(), connect.NewRequest(&clusterv1.StatusRequest{}))
			if err != nil {
				return err
			}
			id := st.Msg.GetNodeId()
			if id == "" {
				return fmt.Errorf("the node at %s did not say its id", a.addr)
			}
			res, err := c.Cluster.RemovePeer(cmd.Context(), connect.NewRequest(&clusterv1.RemovePeerRequest{NodeId: id}))
			if err != nil {
				return err
			}
			return a.report(cmd, res.Msg, "%s left the cluster (index %d)", id, res.Msg.GetIndex())
		},
	}
}
