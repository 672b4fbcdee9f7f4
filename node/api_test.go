package node

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/velocity9/v9/internal/testkit"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
)

// h2cClient speaks HTTP/2 without TLS, as grpcurl -plaintext and buf curl do.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: testkit.BearerTransport(TestToken, &http.Transport{Protocols: &p}), Timeout: 10 * time.Second}
}

// TestGRPCReflectionAndProtocolOverH2C checks what grpcurl and buf curl rely on: gRPC
// reflection lists v9's services, and the gRPC protocol over h2c reaches the handlers.
func TestGRPCReflectionAndProtocolOverH2C(t *testing.T) {
	c := NewTestCluster(t, 1)
	n := c.Nodes[0]
	base := "http://" + n.APIAddr()

	stream := grpcreflect.NewClient(h2cClient(), base).NewStream(context.Background())
	services, err := stream.ListServices()
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	stream.Close()
	for _, want := range []string{"v9.component.v1.ComponentService", "v9.cluster.v1.ClusterService", "grpc.health.v1.Health"} {
		if !slices.ContainsFunc(services, func(s protoreflect.FullName) bool { return string(s) == want }) {
			t.Errorf("reflection lists %v, missing %s", services, want)
		}
	}

	cli := componentv1connect.NewComponentServiceClient(h2cClient(), base, connect.WithGRPC())
	mustCreate(t, n, "grpc-seen")
	resp, err := cli.Get(context.Background(), connect.NewRequest(&componentv1.GetRequest{Name: "grpc-seen"}))
	if err != nil || resp.Msg.Component.Name != "grpc-seen" {
		t.Fatalf("gRPC over h2c: %v, %v", resp, err)
	}
}
