// Package client is the Go client of a v9 node's Connect API, used by the v9 CLI and by
// tests. It speaks the Connect protocol over plain HTTP/1.1 to one node; that node forwards
// writes (and consistent reads) to the Raft leader itself, so a client never needs to know
// which node leads.
//
// The package holds no state beyond its HTTP client and never retries: a caller decides
// what a failed call means. It must not import anything of v9 but the generated code.
package client

import (
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
)

// DefaultTimeout bounds one call end to end unless WithTimeout says otherwise. Writes wait
// for a Raft commit and consistent reads for the leader, so it is generous.
const DefaultTimeout = 60 * time.Second

// Client reaches the public services of one v9 node.
type Client struct {
	Cluster    clusterv1connect.ClusterServiceClient
	Components componentv1connect.ComponentServiceClient

	baseURL string
}

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	httpClient  *http.Client
	timeout     time.Duration
	connectOpts []connect.ClientOption
}

// WithHTTPClient makes the client use hc as it is (WithTimeout is then ignored).
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) { o.httpClient = hc }
}

// WithTimeout bounds each call, connection included. Zero means no bound beyond the
// caller's context (for long blocking queries).
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithConnectOptions passes options (interceptors, codecs, ...) to the generated clients.
func WithConnectOptions(opts ...connect.ClientOption) Option {
	return func(o *options) { o.connectOpts = append(o.connectOpts, opts...) }
}

// New returns a client of the node at addr, either "host:port" (plain http is assumed) or a
// URL such as "http://10.0.0.5:7900" or "https://v9.example.com".
func New(addr string, opts ...Option) *Client {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	hc := o.httpClient
	if hc == nil {
		hc = newHTTPClient(o.timeout)
	}
	base := BaseURL(addr)
	return &Client{
		Cluster:    clusterv1connect.NewClusterServiceClient(hc, base, o.connectOpts...),
		Components: componentv1connect.NewComponentServiceClient(hc, base, o.connectOpts...),
		baseURL:    base,
	}
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

func newHTTPClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
	}
}
