// Package client is the Go client of a v9 node's Connect API, used by the v9 CLI and by
// tests. It speaks the Connect protocol over plain HTTP/1.1 to one node; that node forwards
// writes (and consistent reads) to the Raft leader itself, so a client never needs to know
// which node leads.
//
// The package holds no state beyond its HTTP client and never retries: a caller decides
// what a failed call means. It must not import anything of v9 but the generated code.
//
// Unary calls are bounded by the client's timeout (a context deadline added to each call);
// streams (Deploy.Upload, Deploy.Watch, Logs.Tail) last as long as the caller's context, so
// a `v9 logs -f` or a long rollout is never cut off by the client. Client streaming (Upload)
// works over plain HTTP/1.1 with the Connect protocol: the request body is sent chunked.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/logs/v1/logsv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/secret/v1/secretv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/stats/v1/statsv1connect"
)

// DefaultTimeout bounds one unary call end to end unless WithTimeout says otherwise. Writes
// wait for a Raft commit and consistent reads for the leader, so it is generous. Streams are
// not bounded by it.
const DefaultTimeout = 60 * time.Second

// Client reaches the public services of one v9 node.
type Client struct {
	ACL        aclv1connect.ACLServiceClient
	Cluster    clusterv1connect.ClusterServiceClient
	Components componentv1connect.ComponentServiceClient
	Deploy     deployv1connect.DeployServiceClient
	Logs       logsv1connect.LogServiceClient
	Stats      statsv1connect.StatsServiceClient
	Secrets    secretv1connect.SecretServiceClient

	baseURL string
	hc      *http.Client
	token   string
}

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	httpClient  *http.Client
	roots       *x509.CertPool
	timeout     time.Duration
	token       string
	connectOpts []connect.ClientOption
}

// WithToken sends secret as "Authorization: Bearer <secret>" with every call.
func WithToken(secret string) Option {
	return func(o *options) { o.token = secret }
}

// WithCA trusts the CA certificates in caPEM (the cluster CA, which signs every node's
// certificate) for https:// addresses, instead of the system's roots. It fails if caPEM
// holds no certificate.
func WithCA(caPEM []byte) (Option, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the CA file holds no PEM certificate")
	}
	return func(o *options) { o.roots = pool }, nil
}

// WithHTTPClient makes the client use hc as it is, for unary calls and streams alike. An
// hc.Timeout then bounds streams too; WithTimeout still bounds each unary call.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) { o.httpClient = hc }
}

// WithTimeout bounds each unary call, connection included, with a context deadline (an
// earlier deadline of the caller's wins). Zero means no bound beyond the caller's context
// (for long blocking queries). Streams are never bounded by it.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithConnectOptions passes options (interceptors, codecs, ...) to the generated clients.
func WithConnectOptions(opts ...connect.ClientOption) Option {
	return func(o *options) { o.connectOpts = append(o.connectOpts, opts...) }
}

// MaxResponseBytes bounds one RPC message a client (the CLI, another node) reads: a node's
// answers are larger than its requests (a component list, a log tail, a status), but a
// confused or hostile server still cannot make its client buffer without end.
const MaxResponseBytes = 64 << 20

// New returns a client of the node at addr, either "host:port" (plain http is assumed) or a
// URL such as "http://10.0.0.5:7900" or "https://v9.example.com".
func New(addr string, opts ...Option) *Client {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	hc := o.httpClient
	if hc == nil {
		hc = newHTTPClient(o.roots)
	}
	base := BaseURL(addr)
	copts := append([]connect.ClientOption{connect.WithInterceptors(unaryTimeout(o.timeout)), connect.WithReadMaxBytes(MaxResponseBytes)}, o.connectOpts...)
	if o.token != "" {
		copts = append(copts, connect.WithInterceptors(auth.Bearer(o.token)))
	}
	return &Client{
		ACL:        aclv1connect.NewACLServiceClient(hc, base, copts...),
		Cluster:    clusterv1connect.NewClusterServiceClient(hc, base, copts...),
		Components: componentv1connect.NewComponentServiceClient(hc, base, copts...),
		Deploy:     deployv1connect.NewDeployServiceClient(hc, base, copts...),
		Logs:       logsv1connect.NewLogServiceClient(hc, base, copts...),
		Stats:      statsv1connect.NewStatsServiceClient(hc, base, copts...),
		Secrets:    secretv1connect.NewSecretServiceClient(hc, base, copts...),
		baseURL:    base,
		hc:         hc,
		token:      o.token,
	}
}

// unaryTimeout bounds each unary call by d (zero: no bound). It wraps only unary calls, so
// streams keep the caller's context as it is.
func unaryTimeout(d time.Duration) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		if d <= 0 {
			return next
		}
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			// The response is read whole before a unary call returns, so the deadline can
			// end with the call.
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, req)
		}
	}
}

// Do sends a plain HTTP request for path (the node's non-Connect endpoints, such as the
// keyring's administration) with the client's token and TLS settings.
func (c *Client) Do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.hc.Do(req)
}

// BaseURL is the URL the client sends requests to.
func (c *Client) BaseURL() string { return c.baseURL }

// BaseURL turns "host:port" or a URL into the base URL of a node's API, without a trailing
// slash.
func BaseURL(addr string) string {
	addr = strings.TrimSpace(addr)
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// newHTTPClient has no overall Timeout, which would cut long streams: unary calls get a
// context deadline from unaryTimeout instead, and connecting is bounded by the dialer.
func newHTTPClient(roots *x509.CertPool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	var tc *tls.Config
	if roots != nil {
		tc = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport: OneWrite(&http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
			TLSClientConfig:       tc,
		}),
	}
}
