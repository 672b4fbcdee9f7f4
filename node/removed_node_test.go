package node

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// A node removed from the cluster (`v9 cluster remove-peer`, `v9 cluster leave`) keeps its
// certificate of the cluster CA, and InternalService.Keys answers any node certificate:
// the removed machine (decommissioned, sold, or removed because it was compromised) can
// still fetch every root key of the cluster, and so open every secret in the state.
// Only a member should be handed key material.
func TestRemovedNodeCannotFetchRootKeys(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.Leader(t)
	// The first secret makes the first root key.
	if _, err := leader.keys.Share(true); err != nil {
		t.Fatal(err)
	}
	victim := c.Follower(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := leader.RemovePeer(ctx, victim.ID()); err != nil {
		t.Fatalf("remove %s: %v", victim.ID(), err)
	}
	Eventually(t, 30*time.Second, func() error {
		if leader.IsMember(victim.ID()) {
			return errors.New("still a voter")
		}
		return nil
	})
	// The removed machine, with the certificate it kept.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c.NodeTLS(victim.ID()).ClientConfig()}}
	cli := clusterv1connect.NewInternalServiceClient(hc, "https://"+leader.APIAddr())
	resp, err := cli.Keys(ctx, connect.NewRequest(&clusterv1.KeysRequest{}))
	if err == nil {
		t.Fatalf("removed node %s fetched %d root key(s) from the leader after its removal (active %s)", victim.ID(), len(resp.Msg.Keys), resp.Msg.ActiveId)
	}
	if code := connect.CodeOf(err); code != connect.CodePermissionDenied {
		t.Fatalf("removed node's key fetch: %v, want permission denied", err)
	}
}

// The same open door: a removed node's certificate still writes "on its own account", so it
// registers itself again through InternalService.Apply, and the leader puts a node that is
// not in the Raft configuration back into the node table, where the scheduler places
// instances on it (registerSelf refuses this locally; the leader does not check).
func TestRemovedNodeCannotRegisterAgain(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.Leader(t)
	victim := c.Follower(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := leader.RemovePeer(ctx, victim.ID()); err != nil {
		t.Fatalf("remove %s: %v", victim.ID(), err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c.NodeTLS(victim.ID()).ClientConfig()}}
	cli := clusterv1connect.NewInternalServiceClient(hc, "https://"+leader.APIAddr())
	_, err := cli.Apply(ctx, connect.NewRequest(&clusterv1.ApplyRequest{Command: &statev1.Command{Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{
		Id: victim.ID(), ApiAddr: victim.APIAddr(), RaftAddr: victim.RaftAddr(), ProxyAddr: victim.ProxyAddr(), Runtimes: []statev1.Runtime{statev1.Runtime_RUNTIME_WASM},
	}}}}}))
	if _, nerr := leader.Store().Node(victim.ID()); nerr == nil {
		t.Fatalf("removed node %s registered itself again (apply err %v): it is in the node table but not in the Raft configuration (voter %v)", victim.ID(), err, leader.IsMember(victim.ID()))
	}
}
