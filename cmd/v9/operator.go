package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/velocity9/v9/rpc/client"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
)

func newOperatorCmd(a *app) *cobra.Command {
	cmd := group("operator", "Operate the cluster as a whole: snapshots for backup and disaster recovery")
	snap := &cobra.Command{
		Use:   "snapshot",
		Short: "Save the whole replicated state with its artifacts to a file, or restore one",
		Long: `An operator snapshot is one file (a gzipped tar) holding the whole replicated state,
read consistently, and every artifact its deployments reference. Restoring it replaces the
state of the cluster at --addr (a new one, say, after losing every node) with the saved one;
the cluster keeps its own members, and the scheduler places every component afresh.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRun,
	}
	snap.AddCommand(newSnapshotSaveCmd(a), newSnapshotRestoreCmd(a))
	cmd.AddCommand(snap, newKeyringCmd(a))
	return cmd
}

func newSnapshotSaveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Save the whole state and its artifacts to FILE",
		Args:  exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			tmp, err := os.CreateTemp(filepath.Dir(path), ".v9-snapshot-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			defer tmp.Close()
			stream, err := a.client().Cluster.SnapshotSave(cmd.Context(), connect.NewRequest(&clusterv1.SnapshotSaveRequest{}))
			if err != nil {
				return err
			}
			defer stream.Close()
			var n int64
			for stream.Receive() {
				k, err := tmp.Write(stream.Msg().GetChunk())
				if err != nil {
					return err
				}
				n += int64(k)
			}
			if err := stream.Err(); err != nil {
				return err
			}
			if n == 0 {
				return errors.New("the node sent an empty snapshot")
			}
			if err := tmp.Sync(); err != nil {
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "saved %s (%d bytes)\n", path, n)
			return nil
		},
	}
}

func newSnapshotRestoreCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the whole state of the cluster with the snapshot in FILE",
		Args:  exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			// Only the leader restores: send the file there, asking again while the
			// cluster elects one or leadership moves.
			deadline := time.Now().Add(restoreLeaderWait)
			for {
				res, err := restoreOnce(cmd.Context(), a, f)
				if err == nil {
					m := res.Msg
					warnMissingKeys(cmd, a)
					return a.report(cmd, m, "restored %d components, %d deployments and %d artifacts (saved at index %d) at index %d",
						m.GetComponents(), m.GetDeployments(), m.GetArtifacts(), m.GetSavedIndex(), m.GetIndex())
				}
				if !errors.Is(err, errNotLeader) || time.Now().After(deadline) {
					return err
				}
				select {
				case <-cmd.Context().Done():
					return err
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
}

// restoreLeaderWait bounds how long restore looks for the leader.
const restoreLeaderWait = 15 * time.Second

var errNotLeader = errors.New("not the leader")

// restoreOnce sends the snapshot in f, from its start, to the leader the node at --addr
// names. It fails with errNotLeader when no leader is known or the one asked no longer leads.
func restoreOnce(ctx context.Context, a *app, f *os.File) (*connect.Response[clusterv1.SnapshotRestoreResponse], error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	st, err := a.client().Cluster.Status(ctx, connect.NewRequest(&clusterv1.StatusRequest{}))
	if err != nil {
		return nil, err
	}
	c := a.client()
	switch {
	case st.Msg.GetRaftState() == "Leader":
	case st.Msg.GetLeaderApiAddr() != "":
		c = client.New(st.Msg.GetLeaderApiAddr(), client.WithToken(a.secret()), client.WithConnectOptions(connect.WithInterceptors(logCalls(a.logger))))
	default:
		return nil, fmt.Errorf("%w: no leader known yet", errNotLeader)
	}
	stream := c.Cluster.SnapshotRestore(ctx)
	buf := make([]byte, 256<<10)
	for {
		k, rerr := f.Read(buf)
		if k > 0 {
			if err := stream.Send(&clusterv1.SnapshotRestoreRequest{Chunk: buf[:k]}); err != nil {
				break // the server answered early; CloseAndReceive has its error
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	res, err := stream.CloseAndReceive()
	if connect.CodeOf(err) == connect.CodeFailedPrecondition && strings.Contains(err.Error(), "not the leader") {
		return nil, fmt.Errorf("%w: %w", errNotLeader, err)
	}
	return res, err
}
