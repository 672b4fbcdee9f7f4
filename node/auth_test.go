package node

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/velocity9/v9/auth"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// roleTokens creates one token per role on the cluster and returns their secrets.
func roleTokens(t *testing.T, n *Node) map[auth.Role]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.RoleViewer, auth.RoleDeveloper, auth.RoleAdmin} {
		secret := auth.NewSecret()
		k := &statev1.ApiToken{Id: auth.NewAccessorID(), Name: r.String(), Role: r.String(), Sha256: auth.Hash(secret)}
		if _, err := n.Apply(auth.AsCaller(ctx, TestToken), &statev1.Command{Op: &statev1.Command_CreateApiToken{CreateApiToken: &statev1.CreateApiToken{Token: k}}}); err != nil {
			t.Fatalf("create %s token: %v", r, err)
		}
		out[r] = secret
	}
	return out
}

// callAny calls procedure with an empty request (any request message decodes from no
// bytes) and returns the error code the first answer carries, or nil for success.
func callAny(ctx context.Context, hc *http.Client, base, procedure, token string) error {
	opts := []connect.ClientOption{}
	if token != "" {
		opts = append(opts, connect.WithInterceptors(auth.Bearer(token)))
	}
	var md protoreflect.MethodDescriptor
	if parts := strings.Split(strings.TrimPrefix(procedure, "/"), "/"); len(parts) == 2 {
		if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(parts[0])); err == nil {
			md = d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(parts[1]))
		}
	}
	cli := connect.NewClient[emptypb.Empty, emptypb.Empty](hc, base+procedure, opts...)
	switch {
	case strings.Contains(procedure, "ServerReflection") || (md != nil && md.IsStreamingClient() && md.IsStreamingServer()):
		s := cli.CallBidiStream(ctx)
		_ = s.Send(&emptypb.Empty{}) // a refusal shows in Receive
		_ = s.CloseRequest()
		_, err := s.Receive()
		_ = s.CloseResponse()
		return ignoreEOF(err)
	case md != nil && md.IsStreamingClient():
		s := cli.CallClientStream(ctx)
		_, err := s.CloseAndReceive()
		return err
	case procedure == "/grpc.health.v1.Health/Watch" || (md != nil && md.IsStreamingServer()):
		s, err := cli.CallServerStream(ctx, connect.NewRequest(&emptypb.Empty{}))
		if err != nil {
			return err
		}
		defer s.Close()
		s.Receive()
		return s.Err()
	default:
		_, err := cli.CallUnary(ctx, connect.NewRequest(&emptypb.Empty{}))
		return err
	}
}

func ignoreEOF(err error) error {
	if err != nil && strings.Contains(err.Error(), "EOF") {
		return nil
	}
	return err
}

func refused(err error) bool {
	c := connect.CodeOf(err)
	return err != nil && (c == connect.CodeUnauthenticated || c == connect.CodePermissionDenied)
}

// TestEveryProcedureChecksItsRole calls every procedure of auth.Procedures through a
// node's API: without a token, and with a token of each role. A procedure is refused
// exactly when the table says so; node procedures are refused to every token.
func TestEveryProcedureChecksItsRole(t *testing.T) {
	c := NewTestCluster(t, 1)
	n := c.Nodes[0]
	tokens := roleTokens(t, n)
	hc := h2cClientNoToken()
	base := "http://" + n.APIAddr()
	if len(auth.Procedures) < 30 {
		t.Fatalf("only %d procedures", len(auth.Procedures))
	}
	for proc, need := range auth.Procedures {
		t.Run(strings.TrimPrefix(proc, "/"), func(t *testing.T) {
			for _, r := range []auth.Role{auth.RoleNone, auth.RoleViewer, auth.RoleDeveloper, auth.RoleAdmin} {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := callAny(ctx, hc, base, proc, tokens[r])
				cancel()
				var want bool // allowed
				switch {
				case need.Open:
					want = true
				case need.Node:
					want = n.authz.Insecure
				default:
					want = r >= need.Role
				}
				if got := !refused(err); got != want {
					t.Errorf("%s with %s token: allowed=%v, want %v (err %v)", proc, r, got, want, err)
				}
				if !want && err != nil {
					msg := err.Error()
					switch {
					case r == auth.RoleNone && !need.Node && !strings.Contains(msg, "v9 login"):
						t.Errorf("%s without token: %q does not say how to log in", proc, msg)
					case r != auth.RoleNone && !need.Node && !strings.Contains(msg, need.Role.String()):
						t.Errorf("%s with %s token: %q does not name the role needed", proc, r, msg)
					case need.Node && !strings.Contains(msg, "node certificate"):
						t.Errorf("%s: %q does not say it needs a node certificate", proc, msg)
					}
				}
			}
		})
	}
}

// h2cClientNoToken speaks HTTP/2 without TLS and sends no token.
func h2cClientNoToken() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
}

// TestMetricsNeedAViewerToken: /metrics is for Prometheus scraping with a viewer token
// (`authorization` in the scrape config, docs/security.md): refused without a token or
// with an unknown one, served to a viewer token and to a node certificate.
func TestMetricsNeedAViewerToken(t *testing.T) {
	c := NewTestCluster(t, 1)
	n := c.Leader(t)
	tokens := roleTokens(t, n)
	get := func(hc *http.Client, scheme string) (int, string) {
		t.Helper()
		resp, err := hc.Get(scheme + "://" + n.APIAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(http.DefaultClient, "http"); code != http.StatusUnauthorized || !strings.Contains(body, auth.NoTokenHint) {
		t.Fatalf("no token: %d %q", code, body)
	}
	if code, _ := get(TokenHTTPClient(auth.NewSecret()), "http"); code != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", code)
	}
	if code, body := get(TokenHTTPClient(tokens[auth.RoleViewer]), "http"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("viewer token: %d %.200q", code, body)
	}
	asNode := &http.Client{Transport: &http.Transport{TLSClientConfig: c.NodeTLS("n1").ClientConfig()}}
	if code, _ := get(asNode, "https"); code != http.StatusOK {
		t.Fatalf("node certificate: %d", code)
	}
}

// TestTokenNeverOutlivesItsMaker: a token made with a token (or console session) that
// expires expires at the latest when its maker does, whatever TTL it asked for; a token made
// by one that never expires gets the TTL it asked for, or none.
func TestTokenNeverOutlivesItsMaker(t *testing.T) {
	c := NewTestCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api := "http://" + c.Nodes[0].APIAddr()
	create := func(secret string, ttl time.Duration) *aclv1.CreateTokenResponse {
		t.Helper()
		res, err := aclv1connect.NewACLServiceClient(TokenHTTPClient(secret), api).CreateToken(ctx, connect.NewRequest(&aclv1.CreateTokenRequest{
			Name: "t", Role: auth.RoleAdmin.String(), TtlSeconds: uint64(ttl / time.Second)}))
		if err != nil {
			t.Fatalf("create a token (ttl %s): %v", ttl, err)
		}
		return res.Msg
	}
	if forever := create(TestToken, 0); forever.Token.GetExpireTime() != nil {
		t.Fatalf("a token without TTL from a token that never expires expires at %v", forever.Token.GetExpireTime().AsTime())
	}
	maker := create(TestToken, time.Hour)
	limit := maker.Token.GetExpireTime().AsTime()
	for _, c := range []struct {
		ttl  time.Duration
		want time.Time
	}{{0, limit}, {2 * time.Hour, limit}, {10 * time.Minute, time.Now().Add(10 * time.Minute)}} {
		got := create(maker.Secret, c.ttl).Token.GetExpireTime()
		if got == nil || got.AsTime().Sub(c.want).Abs() > 5*time.Second {
			t.Errorf("ttl %s from a maker expiring at %s: expires at %v, want %s", c.ttl, limit, got.AsTime(), c.want)
		}
	}
}
