package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// TLSFiles are a node's CA certificate, certificate and key.
type TLSFiles struct {
	CA, Cert, Key string
}

// TLSDirFiles are the files `v9 tls` writes for node id into dir.
func TLSDirFiles(dir, id string) TLSFiles {
	return TLSFiles{CA: filepath.Join(dir, CACertFile), Cert: filepath.Join(dir, NodeCertFile(id)), Key: filepath.Join(dir, NodeKeyFile(id))}
}

// NodeTLS gives TLS configurations for node-to-node connections that follow the files on
// disk: when one changes (a rotated certificate, a new CA bundle), the next handshake uses
// it, without a restart. A change that does not load (half written, mismatched) keeps the
// last good material and is reported by Err.
type NodeTLS struct {
	files TLSFiles

	mu      sync.Mutex
	stamp   [3]time.Time
	checked time.Time
	cur     *material
	lastErr error
}

type material struct {
	cert *tls.Certificate
	pool *x509.CertPool
}

// reloadEvery bounds how often the files are checked for a change.
const reloadEvery = 250 * time.Millisecond

// LoadNodeTLS loads the files once; it fails if they do not make a valid node identity.
func LoadNodeTLS(f TLSFiles) (*NodeTLS, error) {
	t := &NodeTLS{files: f}
	m, stamp, err := t.load()
	if err != nil {
		return nil, err
	}
	t.cur, t.stamp, t.checked = m, stamp, time.Now()
	return t, nil
}

func (t *NodeTLS) load() (*material, [3]time.Time, error) {
	var stamp [3]time.Time
	for i, p := range []string{t.files.CA, t.files.Cert, t.files.Key} {
		st, err := os.Stat(p)
		if err != nil {
			return nil, stamp, err
		}
		stamp[i] = st.ModTime()
	}
	cert, err := tls.LoadX509KeyPair(t.files.Cert, t.files.Key)
	if err != nil {
		return nil, stamp, fmt.Errorf("load node certificate: %w", err)
	}
	ca, err := os.ReadFile(t.files.CA)
	if err != nil {
		return nil, stamp, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, stamp, fmt.Errorf("%s holds no PEM certificate", t.files.CA)
	}
	// At start and at every reload: a node certificate of this CA, for the same node (a
	// renewal signed by another CA, or for another id, is refused and the last good kept).
	id, err := verifyNode(cert.Leaf, pool, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, stamp, fmt.Errorf("%s: %w", t.files.Cert, err)
	}
	if t.cur != nil && t.cur.cert.Leaf.Subject.CommonName != id {
		return nil, stamp, fmt.Errorf("%s: a certificate for node %q, not %q: refused", t.files.Cert, id, t.cur.cert.Leaf.Subject.CommonName)
	}
	return &material{cert: &cert, pool: pool}, stamp, nil
}

// current returns the material, reloaded if a file changed since the last check.
func (t *NodeTLS) current() *material {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.checked) < reloadEvery {
		return t.cur
	}
	t.checked = time.Now()
	var stamp [3]time.Time
	for i, p := range []string{t.files.CA, t.files.Cert, t.files.Key} {
		if st, err := os.Stat(p); err == nil {
			stamp[i] = st.ModTime()
		}
	}
	if stamp == t.stamp {
		return t.cur
	}
	m, stamp, err := t.load()
	if err != nil {
		t.lastErr = err
		return t.cur
	}
	t.cur, t.stamp, t.lastErr = m, stamp, nil
	return t.cur
}

// Err is the error of the last reload that failed, nil after a good one.
func (t *NodeTLS) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

// ServerConfig is for a port nodes connect to. With requireClient every client must show a
// node certificate (the Raft port); otherwise one is asked for but optional (the API port,
// where users come without one) and PeerNodeID tells who showed one.
func (t *NodeTLS) ServerConfig(requireClient bool, nextProtos ...string) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClient {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := t.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				NextProtos:   nextProtos,
				Certificates: []tls.Certificate{*m.cert},
				ClientCAs:    m.pool,
				ClientAuth:   auth,
				VerifyConnection: func(cs tls.ConnectionState) error {
					if len(cs.PeerCertificates) == 0 {
						return nil // optional, and required ones are enforced by ClientAuth
					}
					_, err := verifyNode(cs.PeerCertificates[0], m.pool, x509.ExtKeyUsageClientAuth, cs.PeerCertificates[1:]...)
					return err
				},
			}, nil
		},
	}
}

// ClientConfig is for dialing another node: it shows this node's certificate and accepts
// only a node certificate of the cluster CA on the other side, whatever address was dialed.
func (t *NodeTLS) ClientConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: nextProtos,
		// The chain is verified below against the CA as it is now (it may be reloaded);
		// the address dialed does not matter, the node identity does.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return t.current().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the other side showed no certificate")
			}
			_, err := verifyNode(cs.PeerCertificates[0], t.current().pool, x509.ExtKeyUsageServerAuth, cs.PeerCertificates[1:]...)
			return err
		},
	}
}

// verifyNode checks that leaf is a node certificate of the CA in pool and returns the node
// id it names.
func verifyNode(leaf *x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage, intermediates ...*x509.Certificate) (string, error) {
	if leaf == nil {
		return "", errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("not a certificate of this cluster's CA: %w", err)
	}
	if !slices.Contains(leaf.DNSNames, NodeDNSName) {
		return "", fmt.Errorf("certificate of %q does not name a v9 node (%s)", leaf.Subject.CommonName, NodeDNSName)
	}
	if leaf.Subject.CommonName == "" {
		return "", errors.New("node certificate without a node id")
	}
	return leaf.Subject.CommonName, nil
}

// PeerNodeID returns the node id of a verified node certificate on a TLS connection, ""
// when the connection is not TLS or showed none.
func PeerNodeID(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return ""
	}
	leaf := cs.PeerCertificates[0]
	if !slices.Contains(leaf.DNSNames, NodeDNSName) {
		return ""
	}
	return leaf.Subject.CommonName
}

// PeerIdentity puts the node id of a verified client certificate into the request context
// (WithPeerNode), for the interceptor to find.
func PeerIdentity(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := PeerNodeID(r.TLS); id != "" {
			r = r.WithContext(WithPeerNode(r.Context(), id))
		}
		h.ServeHTTP(w, r)
	})
}
