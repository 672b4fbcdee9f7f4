package node

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestRevokedTokenEndsItsWatchStream: a token revoked while its console page watches the
// component list must stop receiving the cluster's changes. Today the stream, authorized
// once at its start, goes on forever and shows a revoked token every new component.
func TestRevokedTokenEndsItsWatchStream(t *testing.T) {
	c := NewTestCluster(t, 1)
	n := c.Nodes[0]
	api := "http://" + n.APIAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	acl := aclv1connect.NewACLServiceClient(TestHTTPClient, api)
	tok, err := acl.CreateToken(ctx, connect.NewRequest(&aclv1.CreateTokenRequest{Name: "watcher", Role: auth.RoleViewer.String()}))
	if err != nil {
		t.Fatalf("create a viewer token: %v", err)
	}
	watcher := componentv1connect.NewComponentServiceClient(TokenHTTPClient(tok.Msg.Secret), api)
	stream, err := watcher.Watch(ctx, connect.NewRequest(&componentv1.WatchRequest{}))
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer stream.Close()
	if !stream.Receive() {
		t.Fatalf("first page: %v", stream.Err())
	}
	if _, err := acl.RevokeToken(ctx, connect.NewRequest(&aclv1.RevokeTokenRequest{AccessorId: tok.Msg.Token.AccessorId})); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	admin := componentv1connect.NewComponentServiceClient(TestHTTPClient, api)
	if _, err := admin.Create(ctx, connect.NewRequest(&componentv1.CreateRequest{
		Name: "after-revoke", Runtime: statev1.Runtime_RUNTIME_WASM, Spec: &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 1},
	})); err != nil {
		t.Fatalf("create a component after the revoke: %v", err)
	}
	for stream.Receive() {
		for _, r := range stream.Msg().Rows {
			if r.GetComponent().GetName() == "after-revoke" {
				t.Fatalf("a revoked token's Watch stream still delivers changes made after the revoke (component %q)", "after-revoke")
			}
		}
	}
	if code := connect.CodeOf(stream.Err()); code != connect.CodeUnauthenticated {
		t.Fatalf("the revoked token's stream ended with %v (%v), want Unauthenticated", code, stream.Err())
	}
}
