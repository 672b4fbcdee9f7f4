package node

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	secretv1 "github.com/velocity9/v9/rpc/gen/v9/secret/v1"
	"github.com/velocity9/v9/rpc/gen/v9/secret/v1/secretv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestSecretSetThroughABehindNodeIsNotNotFound: `v9 secret set` is a write; writes go to the
// leader from any node. Through a node whose copy is behind (here: cut off, so its copy lacks
// a component the cluster just created), it answers "component not found" — a wrong answer
// the user acts on (re-creates the component, or gives up) — because it reads the component
// in its own copy before it writes. It must answer as the other writes through that node
// do: Unavailable (no leader), or succeed once it reaches one.
func TestSecretSetThroughABehindNodeIsNotNotFound(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.Leader(t)
	f, fi := follower(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.Partition(fi)
	defer c.Heal(fi)
	if _, err := componentv1connect.NewComponentServiceClient(TestHTTPClient, "http://"+leader.APIAddr()).Create(ctx, connect.NewRequest(&componentv1.CreateRequest{
		Name: "fresh", Runtime: statev1.Runtime_RUNTIME_WASM, Spec: &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 1},
	})); err != nil {
		t.Fatalf("create on the leader: %v", err)
	}
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	_, err := secretv1connect.NewSecretServiceClient(TestHTTPClient, "http://"+f.APIAddr()).Set(sctx, connect.NewRequest(&secretv1.SetRequest{Component: "fresh", Name: "API_KEY", Value: []byte("v")}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		t.Fatalf("a secret set through a node that is behind says the component does not exist: %v", err)
	}
	t.Logf("secret set through the cut-off node: %v", err)
}

// TestSecretNameKeepsTheReservedPrefix: a secret is an environment variable of the
// component's instances, and names starting with V9_ (any case) belong to v9: a component
// must never shadow what v9 sets (spec.Reserved). `v9 component update --env V9_X=..` is
// refused and the console refuses such a secret name, but SecretService.Set (`v9 secret
// set`) takes it.
func TestSecretNameKeepsTheReservedPrefix(t *testing.T) {
	c := NewTestCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api := "http://" + c.Nodes[0].APIAddr()
	if _, err := componentv1connect.NewComponentServiceClient(TestHTTPClient, api).Create(ctx, connect.NewRequest(&componentv1.CreateRequest{
		Name: "shadow", Runtime: statev1.Runtime_RUNTIME_WASM, Spec: &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 1},
	})); err != nil {
		t.Fatalf("create: %v", err)
	}
	for _, name := range []string{"V9_COMPONENT", "v9_node"} {
		_, err := secretv1connect.NewSecretServiceClient(TestHTTPClient, api).Set(ctx, connect.NewRequest(&secretv1.SetRequest{Component: "shadow", Name: name, Value: []byte("x")}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("secret %s, in v9's reserved prefix: %v, want InvalidArgument", name, err)
		}
	}
}
