package node

import (
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/rpc/client"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/logs/v1/logsv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/stats/v1/statsv1connect"
	"github.com/velocity9/v9/transport"
)

// peerClients holds Connect clients to other nodes' APIs, one set per address.
type peerClients struct {
	http   *http.Client
	scheme string // "https" with node certificates, "http" without
	mu     sync.Mutex
	byID   map[string]*peerClient
}

type peerClient struct {
	cluster   clusterv1connect.ClusterServiceClient
	component componentv1connect.ComponentServiceClient
	internal  clusterv1connect.InternalServiceClient
	artifacts deployv1connect.ArtifactServiceClient
	logs      logsv1connect.LogServiceClient
	stats     statsv1connect.StatsServiceClient
}

func newPeerClients(f *transport.Faults, nodeTLS *auth.NodeTLS) *peerClients {
	d := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:         f.DialContext(d),
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	scheme := "http"
	if nodeTLS != nil {
		scheme = "https"
		tr.TLSClientConfig = nodeTLS.ClientConfig("h2", "http/1.1")
		tr.ForceAttemptHTTP2 = true
		tr.TLSHandshakeTimeout = 5 * time.Second
	}
	return &peerClients{http: &http.Client{Transport: tr}, scheme: scheme, byID: map[string]*peerClient{}}
}

func (p *peerClients) get(addr string) *peerClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.byID[addr]
	if !ok {
		base := p.scheme + "://" + addr
		// Calls made on a caller's behalf carry the caller's token on.
		fwd := connect.WithClientOptions(connect.WithInterceptors(auth.Forward()), connect.WithReadMaxBytes(client.MaxResponseBytes))
		c = &peerClient{
			cluster:   clusterv1connect.NewClusterServiceClient(p.http, base, fwd),
			component: componentv1connect.NewComponentServiceClient(p.http, base, fwd),
			internal:  clusterv1connect.NewInternalServiceClient(p.http, base, fwd),
			// Artifacts are compressed already.
			artifacts: deployv1connect.NewArtifactServiceClient(p.http, base, fwd),
			logs:      logsv1connect.NewLogServiceClient(p.http, base, fwd),
			stats:     statsv1connect.NewStatsServiceClient(p.http, base, fwd),
		}
		p.byID[addr] = c
	}
	return c
}

func (p *peerClients) close() {
	p.http.CloseIdleConnections()
}
