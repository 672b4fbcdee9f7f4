package testkit

import (
	"net/http"

	"github.com/velocity9/v9/rpc/client"
)

// TokenHTTPClient returns an HTTP client (HTTP/1.1 and h2c) that sends the token with every
// request.
func TokenHTTPClient(token string) *http.Client {
	// Keep a connection per concurrent caller alive: the default keeps two per host, so
	// tests and benchmarks with more concurrent writers would dial for nearly every call.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	// One write per unary call, as the v9 client sends it (client.OneWrite), and like it
	// one copy of each request: the token is set in OneWrite's copy.
	return &http.Client{Transport: client.OneWriteWithHeader(tr, "Authorization", "Bearer "+token)}
}

// BearerTransport sends the token with every request it passes to next.
func BearerTransport(token string, next http.RoundTripper) http.RoundTripper {
	return bearerTransport{token: token, next: next}
}

type bearerTransport struct {
	token string
	next  http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
