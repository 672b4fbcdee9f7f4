package testkit

import "net/http"

// TokenHTTPClient returns an HTTP client (HTTP/1.1 and h2c) that sends the token with every
// request.
func TokenHTTPClient(token string) *http.Client {
	// Keep a connection per concurrent caller alive: the default keeps two per host, so
	// tests and benchmarks with more concurrent writers would dial for nearly every call.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: BearerTransport(token, tr)}
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
