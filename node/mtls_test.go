package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	"github.com/velocity9/v9/auth"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/transport"
)

// TestInternalCallsNeedNodeCertificate: a client with the admin token but no node
// certificate cannot apply a command, join a voter, fetch an artifact or a root key of the
// keyring, over plain HTTP
// or over TLS without a client certificate; a node certificate of another CA does not
// even complete the handshake.
func TestInternalCallsNeedNodeCertificate(t *testing.T) {
	c := NewTestCluster(t, 3)
	n := c.Follower(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tlsNoCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	other := foreignNodeTLS(t)
	otherCA := &http.Client{Transport: &http.Transport{TLSClientConfig: other.ClientConfig()}}

	forged := &statev1.Command{Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
		Id: "forged", Name: "forged", Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1,
		Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 1},
	}}}}
	for _, tc := range []struct {
		name, scheme string
		hc           *http.Client
		handshake    bool // refused at the TLS handshake rather than by the interceptor
	}{
		{"plain http with admin token", "http", TestHTTPClient, false},
		{"tls without client certificate", "https", tlsNoCert, false},
		{"certificate of another CA", "https", otherCA, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.scheme + "://" + n.APIAddr()
			opts := connect.WithInterceptors(auth.Bearer(TestToken))
			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s: accepted", what)
				}
				if !tc.handshake && connect.CodeOf(err) != connect.CodePermissionDenied {
					t.Fatalf("%s: %v, want PermissionDenied", what, err)
				}
			}
			internal := clusterv1connect.NewInternalServiceClient(tc.hc, base, opts)
			_, err := internal.Apply(ctx, connect.NewRequest(&clusterv1.ApplyRequest{Command: forged}))
			check("InternalService.Apply", err)
			_, err = internal.Heartbeat(ctx, connect.NewRequest(&clusterv1.HeartbeatRequest{NodeId: n.ID()}))
			check("InternalService.Heartbeat", err)
			// nor the keyring's root keys, even asking the leader to make one
			_, err = internal.Keys(ctx, connect.NewRequest(&clusterv1.KeysRequest{Create: true}))
			check("InternalService.Keys", err)
			_, err = clusterv1connect.NewClusterServiceClient(tc.hc, base, opts).Join(ctx, connect.NewRequest(&clusterv1.JoinRequest{
				NodeId: "ghost", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2"}))
			check("ClusterService.Join", err)
			s, err := deployv1connect.NewArtifactServiceClient(tc.hc, base, opts).Fetch(ctx, connect.NewRequest(&deployv1.FetchRequest{Digest: "sha256:00"}))
			if err == nil {
				s.Receive()
				err = s.Err()
				s.Close()
			}
			check("ArtifactService.Fetch", err)
		})
	}
	if _, err := n.Store().Component("forged"); err == nil {
		t.Fatal("the forged command was applied")
	}
	for _, m := range n.raft.r.GetConfiguration().Configuration().Servers {
		if m.ID == "ghost" || m.ID == "n9" {
			t.Fatalf("%s joined the cluster", m.ID)
		}
	}

	// A node of the cluster does get through (its peer clients present its certificate).
	if _, err := n.peers.get(c.Leader(t).APIAddr()).internal.ReadIndex(ctx, connect.NewRequest(&clusterv1.ReadIndexRequest{})); err != nil {
		t.Fatalf("a node's own internal call: %v", err)
	}
}

// TestRaftPortRefusesStrangers: hashicorp/raft's own transport over plain TCP, and over TLS
// with a certificate of another CA, cannot get an AppendEntries with a huge term accepted.
func TestRaftPortRefusesStrangers(t *testing.T) {
	c := NewTestCluster(t, 3)
	target := c.Follower(t)
	term := func() uint64 {
		v, _ := strconv.ParseUint(target.raft.r.Stats()["term"], 10, 64)
		return v
	}
	before := term()
	req := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("evil"), Addr: []byte("127.0.0.1:1")},
		Term:      1_000_000,
	}

	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var resp raft.AppendEntriesResponse
	if err := plain.AppendEntries(raft.ServerID(target.ID()), raft.ServerAddress(target.RaftAddr()), req, &resp); err == nil {
		t.Fatalf("plain TCP AppendEntries accepted: %+v", resp)
	}

	other := foreignNodeTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stream := &transport.StreamLayer{Listener: ln, Advertise: ln.Addr(), F: &transport.Faults{}, TLS: other}
	if _, err := stream.Dial(raft.ServerAddress(target.RaftAddr()), 2*time.Second); err == nil {
		t.Fatal("a certificate of another CA completed the Raft handshake")
	}
	ln.Close()
	if after := term(); after >= 1_000_000 || after > before+5 {
		t.Fatalf("term moved from %d to %d", before, after)
	}
}

// TestNodeCertificateReloads: a node's certificate replaced on disk is served by the next
// handshake, without a restart, and the cluster keeps working across the change.
func TestNodeCertificateReloads(t *testing.T) {
	c := NewTestCluster(t, 3)
	n := c.Nodes[0]
	peerTLS := c.NodeTLS("n2")
	serial := func() string {
		conn, err := tls.Dial("tcp", n.APIAddr(), peerTLS.ClientConfig())
		if err != nil {
			return "dial: " + err.Error()
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	if err := auth.CreateNodeCert(c.TLSDir(), "n1", auth.NodeCertOptions{}); err != nil {
		t.Fatal(err)
	}
	files := auth.TLSDirFiles(c.TLSDir(), "n1")
	b, err := readCert(files.Cert)
	if err != nil {
		t.Fatal(err)
	}
	want := b.SerialNumber.String()
	if want == first {
		t.Fatal("the new certificate has the old serial")
	}
	Eventually(t, 5*time.Second, func() error {
		if got := serial(); got != want {
			return fmt.Errorf("n1 serves certificate %s, want the new %s", got, want)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := createComponent(ctx, c.Follower(t), "after-rotation"); err != nil {
		t.Fatalf("write after rotation: %v", err)
	}
}

func readCert(path string) (*x509.Certificate, error) {
	kp, err := tls.LoadX509KeyPair(path, path[:len(path)-len(".pem")]+"-key.pem")
	if err != nil {
		return nil, err
	}
	return kp.Leaf, nil
}

// TestNodeSpeaksOnlyForItself: a valid cluster certificate for n2 cannot heartbeat as n1,
// announce itself as n1 in Discover, or move member n1 to another address through Join; a
// certificate of the cluster CA for a node that is not a member cannot join a ghost. A node
// heartbeating as itself still gets through (observed-state reports:
// TestObservedStateOnlyFromItsNode).
func TestNodeSpeaksOnlyForItself(t *testing.T) {
	c := NewTestCluster(t, 3)
	l := c.Leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := func(id string) *http.Client { return nodeClient(c, id) }
	base := "https://" + l.APIAddr()
	denied := func(what string, err error, ids ...string) { t.Helper(); wantDenied(t, what, err, ids...) }
	asN2 := clusterv1connect.NewInternalServiceClient(client("n2"), base)
	// The leader answers no heartbeat of a node that is not in the state (a removed node's
	// lease must run out), and a bootstrapped node registers itself only once it sees a
	// leader: wait until the leader has applied n2's registration.
	Eventually(t, 20*time.Second, func() error {
		_, err := l.fsm.Store.Node("n2")
		return err
	})
	_, err := asN2.Heartbeat(ctx, connect.NewRequest(&clusterv1.HeartbeatRequest{NodeId: "n1"}))
	denied("heartbeat as n1 with n2's certificate", err, "n1", "n2")
	if _, err := asN2.Heartbeat(ctx, connect.NewRequest(&clusterv1.HeartbeatRequest{NodeId: "n2"})); err != nil {
		t.Fatalf("n2's own heartbeat: %v", err)
	}
	_, err = asN2.Discover(ctx, connect.NewRequest(&clusterv1.DiscoverRequest{Self: &clusterv1.Peer{NodeId: "n1", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2"}}))
	denied("discover announcing n1 with n2's certificate", err, "n1", "n2")

	for _, target := range []*Node{l, c.Follower(t)} {
		_, err = clusterv1connect.NewClusterServiceClient(client("n2"), "https://"+target.APIAddr()).Join(ctx, connect.NewRequest(&clusterv1.JoinRequest{
			NodeId: "n1", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2"}))
		denied("join moving n1 with n2's certificate at "+target.ID(), err, "n1", "n2")
		_, err = clusterv1connect.NewClusterServiceClient(client("n9"), "https://"+target.APIAddr()).Join(ctx, connect.NewRequest(&clusterv1.JoinRequest{
			NodeId: "ghost", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2"}))
		denied("join as ghost with non-member n9's certificate at "+target.ID(), err, "ghost", "n9")
	}
	for _, m := range l.raft.r.GetConfiguration().Configuration().Servers {
		if m.ID == "ghost" || (m.ID == "n1" && string(m.Address) == "127.0.0.1:1") {
			t.Fatalf("forged join took effect: %+v", m)
		}
	}

}

// TestForwardedWritesNeedTheCaller: a client holding a valid node certificate (n2's) but
// no user token, speaking straight to the leader's InternalService.Apply as a forwarding
// follower would, cannot create a component, mark a node down, remove one, mint a token or
// write placements, nor join a new node id anywhere; with a forwarded viewer token a
// developer write is refused naming the role, with a developer token it is applied and the
// audit names that token, not the actor the forwarder wrote. A user's write through a
// follower still works.
func TestForwardedWritesNeedTheCaller(t *testing.T) {
	c := NewTestCluster(t, 3)
	l := c.Leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tokens := roleTokens(t, l)
	asNode := &http.Client{Transport: &http.Transport{TLSClientConfig: c.NodeTLS("n2").ClientConfig()}}
	internal := func(token string) clusterv1connect.InternalServiceClient {
		var opts []connect.ClientOption
		if token != "" {
			opts = append(opts, connect.WithInterceptors(auth.Bearer(token)))
		}
		return clusterv1connect.NewInternalServiceClient(asNode, "https://"+l.APIAddr(), opts...)
	}
	component := func(name string) *statev1.Command {
		return &statev1.Command{Actor: "user:someone-else", Op: &statev1.Command_CreateComponent{CreateComponent: &statev1.CreateComponent{Component: &statev1.Component{
			Id: name, Name: name, Runtime: statev1.Runtime_RUNTIME_WASM, Replicas: 1, Spec: &statev1.ComponentSpec{ScaleMin: 1, ScaleMax: 1},
		}}}}
	}
	admin := &statev1.ApiToken{Id: auth.NewAccessorID(), Name: "minted", Role: "admin", Sha256: auth.Hash(auth.NewSecret())}
	for name, cmd := range map[string]*statev1.Command{
		"create a component":  component("forged"),
		"mark a node down":    {Op: &statev1.Command_SetNodeStatus{SetNodeStatus: &statev1.SetNodeStatus{Id: "n3", Status: statev1.NodeStatus_NODE_STATUS_DOWN}}},
		"remove a node":       {Op: &statev1.Command_RemoveNode{RemoveNode: &statev1.RemoveNode{Id: "n3"}}},
		"mint an admin token": {Op: &statev1.Command_CreateApiToken{CreateApiToken: &statev1.CreateApiToken{Token: admin}}},
		"mint a GitHub session": {Op: &statev1.Command_CreateApiToken{CreateApiToken: &statev1.CreateApiToken{Token: &statev1.ApiToken{
			Id: auth.NewAccessorID(), Name: "s", Role: "admin", Sha256: auth.Hash(auth.NewSecret()), GithubLogin: "octocat", Session: true}}}},
		"register a ghost": {Op: &statev1.Command_RegisterNode{RegisterNode: &statev1.RegisterNode{Node: &statev1.Node{Id: "ghost", ApiAddr: "127.0.0.1:1"}}}},
		"write placements": {Op: &statev1.Command_DeletePlacements{DeletePlacements: &statev1.DeletePlacements{Ids: []string{"x"}}}},
	} {
		_, err := internal("").Apply(ctx, connect.NewRequest(&clusterv1.ApplyRequest{Command: cmd}))
		if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), `"n2"`) {
			t.Fatalf("%s with only n2's certificate: %v, want PermissionDenied naming n2", name, err)
		}
	}
	_, err := internal(tokens[auth.RoleViewer]).Apply(ctx, connect.NewRequest(&clusterv1.ApplyRequest{Command: component("forged")}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "developer") {
		t.Fatalf("create with a forwarded viewer token: %v, want PermissionDenied naming developer", err)
	}
	if _, err := l.Store().Component("forged"); err == nil {
		t.Fatal("a forged create was applied")
	}
	if _, err := l.Store().Token(admin.Id); err == nil {
		t.Fatal("a minted token was applied")
	}
	if nd, err := l.Store().Node("n3"); err == nil && nd.Status == statev1.NodeStatus_NODE_STATUS_DOWN {
		t.Fatalf("n3 marked down by a forged write: %v", nd)
	}
	if _, err := internal(tokens[auth.RoleDeveloper]).Apply(ctx, connect.NewRequest(&clusterv1.ApplyRequest{Command: component("real")})); err != nil {
		t.Fatalf("create with a forwarded developer token: %v", err)
	}
	found := false
	for _, e := range l.Store().Audit(10) {
		if strings.Contains(e.Actor, "someone-else") {
			t.Fatalf("audit kept the forwarder's actor: %+v", e)
		}
		found = found || strings.Contains(e.Actor, "(developer)")
	}
	if !found {
		t.Fatalf("the audit does not name the developer token: %v", l.Store().Audit(10))
	}

	// Join: never for another id, at the leader or a follower; a follower sends even a
	// newcomer's own Join to the leader instead of vouching for it.
	f := c.Follower(t)
	for _, target := range []*Node{l, f} {
		_, err := clusterv1connect.NewClusterServiceClient(asNode, "https://"+target.APIAddr()).Join(ctx, connect.NewRequest(&clusterv1.JoinRequest{
			NodeId: "ghost", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2"}))
		if connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Fatalf("join of a new id with n2's certificate at %s: %v", target.ID(), err)
		}
	}
	asN9 := &http.Client{Transport: &http.Transport{TLSClientConfig: c.NodeTLS("n9").ClientConfig()}}
	_, err = clusterv1connect.NewClusterServiceClient(asN9, "https://"+f.APIAddr()).Join(ctx, connect.NewRequest(&clusterv1.JoinRequest{
		NodeId: "n9", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2"}))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Meta().Get(LeaderAPIHeader) != l.APIAddr() {
		t.Fatalf("a newcomer's join at a follower: %v, want a refusal pointing at the leader %s", err, l.APIAddr())
	}
	for _, m := range l.raft.r.GetConfiguration().Configuration().Servers {
		if m.ID == "ghost" || m.ID == "n9" {
			t.Fatalf("%s joined the cluster", m.ID)
		}
	}

	// A user's write through a follower: forwarded with the user's token, applied.
	dev := auth.AsCaller(ctx, tokens[auth.RoleDeveloper])
	if _, err := f.Apply(dev, component("via-follower")); err != nil {
		t.Fatalf("a developer's write through a follower: %v", err)
	}
	if _, err := f.Apply(ctx, component("no-caller")); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a follower's write without a caller: %v, want PermissionDenied", err)
	}
}

// nodeClient is an HTTP client that shows node id's certificate.
func nodeClient(c *TestCluster, id string) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: c.NodeTLS(id).ClientConfig()}}
}

// wantDenied fails unless err is PermissionDenied naming every one of ids.
func wantDenied(t *testing.T, what string, err error, ids ...string) {
	t.Helper()
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("%s: %v, want PermissionDenied", what, err)
	}
	for _, id := range ids {
		if !strings.Contains(err.Error(), strconv.Quote(id)) {
			t.Fatalf("%s: %q does not name %s", what, err, id)
		}
	}
}

// foreignNodeTLS is node n9's TLS identity under a CA of its own, not the cluster's.
func foreignNodeTLS(t *testing.T) *auth.NodeTLS {
	foreign := t.TempDir()
	if err := auth.CreateCA(foreign); err != nil {
		t.Fatal(err)
	}
	if err := auth.CreateNodeCert(foreign, "n9", auth.NodeCertOptions{}); err != nil {
		t.Fatal(err)
	}
	other, err := auth.LoadNodeTLS(auth.TLSDirFiles(foreign, "n9"))
	if err != nil {
		t.Fatal(err)
	}
	return other
}
