package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"connectrpc.com/connect"
)

// A join token lets one new node receive a certificate of the cluster CA. Its secret
// carries the SHA-256 of the CA certificate, so the new node checks that it talks to the
// cluster before it sends the token: v9j_<64 hex digits>_<32 random bytes, base64url>.
const JoinTokenPrefix = "v9j_"

// Paths on the API port for joining with a token (plain HTTP handlers, open: the token is
// the credential).
const (
	JoinPathPrefix = "/v9/join/"
	JoinCAPath     = JoinPathPrefix + "ca.pem"
	JoinCertPath   = JoinPathPrefix + "certificate"
)

// Join tokens' lifetimes.
const (
	DefaultJoinTokenTTL = time.Hour
	MaxJoinTokenTTL     = 7 * 24 * time.Hour
)

// NewJoinSecret returns a join token secret bound to the CA certificate caDER.
func NewJoinSecret(caDER []byte) string {
	sum := sha256.Sum256(caDER)
	var b [32]byte
	_, _ = rand.Read(b[:])
	return JoinTokenPrefix + hex.EncodeToString(sum[:]) + "_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// joinCAHash returns the CA fingerprint a join token carries.
func joinCAHash(token string) ([]byte, error) {
	rest, ok := strings.CutPrefix(token, JoinTokenPrefix)
	h, _, ok2 := strings.Cut(rest, "_")
	sum, err := hex.DecodeString(h)
	if !ok || !ok2 || err != nil || len(sum) != sha256.Size {
		return nil, errors.New("not a join token (they start with " + JoinTokenPrefix + "; make one with `v9 token create --join`)")
	}
	return sum, nil
}

// CAPEM reads the cluster CA certificate of these files (public).
func (t *NodeTLS) CAPEM() ([]byte, error) { return os.ReadFile(t.files.CA) }

// CADir is the directory of the CA certificate, where `v9 tls ca create` puts the CA key.
func (t *NodeTLS) CADir() string { return filepath.Dir(t.files.CA) }

// CADER is the CA certificate of CAPEM, DER encoded.
func CADER(caPEM []byte) ([]byte, error) {
	b, _ := pem.Decode(caPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("the CA file holds no PEM certificate")
	}
	return b.Bytes, nil
}

// nodeID is what a node id may look like in a certificate.
var nodeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// JoinRequest is what a joining node posts to JoinCertPath.
type JoinRequest struct {
	Token  string `json:"token"`
	NodeID string `json:"node_id"`
	CSR    string `json:"csr"` // PEM
}

// JoinAnswer is the answer: the node's certificate and the CA's, PEM.
type JoinAnswer struct {
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
}

// JoinIssuer signs node certificates for join tokens. The node that serves it needs the
// CA key in CADir (docs/security.md).
type JoinIssuer struct {
	Tokens  TokenStore
	CatchUp func(ctx context.Context) error
	// Consume marks the token used through Raft; it fails if another request used it first.
	Consume func(ctx context.Context, id string) error
	// Member reports whether a node id is already in the cluster (its id is taken).
	Member func(id string) bool
	CADir  string
	Node   string // this node's id, for messages
	Log    *slog.Logger
	Now    func() time.Time
}

// joinError is a refusal with its HTTP status.
type joinError struct {
	code int
	msg  string
}

func (e *joinError) Error() string { return e.msg }

// Handler serves JoinCAPath (the CA certificate) and JoinCertPath.
func (j *JoinIssuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+JoinCAPath, func(w http.ResponseWriter, _ *http.Request) {
		b, err := os.ReadFile(filepath.Join(j.CADir, CACertFile))
		if err != nil {
			http.Error(w, "this node has no CA certificate", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(b)
	})
	mux.HandleFunc("POST "+JoinCertPath, func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "a join request is JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		ans, err := j.issue(r.Context(), &req)
		if err != nil {
			var je *joinError
			if !errors.As(err, &je) {
				je = &joinError{http.StatusServiceUnavailable, err.Error()}
			}
			j.log().Warn("join refused", "node_id", req.NodeID, "remote", r.RemoteAddr, "reason", je.msg)
			http.Error(w, je.msg, je.code)
			return
		}
		j.log().Info("issued a node certificate for a join token", "node_id", req.NodeID, "remote", r.RemoteAddr)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ans)
	})
	return mux
}

func (j *JoinIssuer) log() *slog.Logger {
	if j.Log != nil {
		return j.Log
	}
	return slog.Default()
}

func (j *JoinIssuer) issue(ctx context.Context, req *JoinRequest) (*JoinAnswer, error) {
	forbid := func(format string, a ...any) error {
		return &joinError{http.StatusForbidden, fmt.Sprintf(format, a...)}
	}
	if _, err := joinCAHash(req.Token); err != nil {
		return nil, forbid("%v", err)
	}
	if !nodeID.MatchString(req.NodeID) {
		return nil, &joinError{http.StatusBadRequest, fmt.Sprintf("node id %q: want 1 to 63 letters, digits, '.', '_' or '-'", req.NodeID)}
	}
	sum := Hash(req.Token)
	k, err := j.Tokens.TokenBySHA256(sum)
	if err != nil && j.CatchUp != nil && j.CatchUp(ctx) == nil {
		k, err = j.Tokens.TokenBySHA256(sum)
	}
	if err != nil || subtle.ConstantTimeCompare(k.GetSha256(), sum) != 1 {
		return nil, forbid("this join token is not known to the cluster (wrong token, or from another cluster)")
	}
	if k.Role != JoinRole {
		return nil, forbid("token %s is not a join token (make one with `v9 token create --join`)", k.Id)
	}
	if rt := k.GetRevokeTime(); rt != nil {
		return nil, forbid("join token %s was already used (or revoked) at %s: make a new one", k.Id, rt.AsTime().UTC().Format(time.RFC3339))
	}
	now := time.Now()
	if j.Now != nil {
		now = j.Now()
	}
	if et := k.GetExpireTime(); et != nil && !now.Before(et.AsTime()) {
		return nil, forbid("join token %s expired at %s: make a new one", k.Id, et.AsTime().UTC().Format(time.RFC3339))
	}
	if j.Member != nil && j.Member(req.NodeID) {
		return nil, &joinError{http.StatusConflict, fmt.Sprintf("node id %q is already a member of the cluster: a join token makes certificates for new ids only", req.NodeID)}
	}
	csr, err := parseCSR(req.CSR, req.NodeID)
	if err != nil {
		return nil, &joinError{http.StatusBadRequest, err.Error()}
	}
	caCert, caKey, err := loadCA(j.CADir)
	if err != nil {
		return nil, &joinError{http.StatusServiceUnavailable, fmt.Sprintf("node %s does not hold the CA key (%s in its TLS directory): join through a node that does (docs/security.md)", j.Node, CAKeyFile)}
	}
	if err := j.Consume(ctx, k.Id); err != nil {
		if connect.CodeOf(err) == connect.CodeAlreadyExists { // used through another node meanwhile
			return nil, forbid("join token %s was already used (or revoked): make a new one", k.Id)
		}
		return nil, forbid("join token %s could not be used: %v", k.Id, err)
	}
	der, err := signNode(caCert, caKey, req.NodeID, csr.PublicKey, NodeCertOptions{DNSNames: csr.DNSNames, IPs: csr.IPAddresses})
	if err != nil {
		return nil, err
	}
	return &JoinAnswer{
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		CA:          string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})),
	}, nil
}

// parseCSR checks a certificate request: PEM, self-signed, for node id. Extra names it asks
// for may not be another node's.
func parseCSR(p, id string) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode([]byte(p))
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("the join request holds no PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse the certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the certificate request's signature: %w", err)
	}
	if csr.Subject.CommonName != id {
		return nil, fmt.Errorf("the certificate request names %q, the join request %q", csr.Subject.CommonName, id)
	}
	var names []string
	for _, n := range csr.DNSNames {
		if n == NodeDNSName || strings.HasSuffix(n, "."+NodeDNSName) || n == "localhost" {
			continue // added by signNode for this node only
		}
		names = append(names, n)
	}
	csr.DNSNames = names
	return csr, nil
}

// JoinWithToken gets a certificate for node id from the cluster at addr (an API address)
// with a join token, and writes ca.pem, node-<id>.pem and node-<id>-key.pem into dir. The
// key is made here and never leaves. Before sending the token it checks that addr serves
// a CA whose SHA-256 is the one in the token, and then talks TLS only to a node of it.
func JoinWithToken(ctx context.Context, addr, token, dir, id string, o NodeCertOptions) error {
	want, err := joinCAHash(token)
	if err != nil {
		return err
	}
	base := "https://" + addr
	// The CA certificate is public; it is trusted only if it matches the token.
	probe := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}}}
	caPEM, err := getBody(ctx, probe, base+JoinCAPath)
	if err != nil {
		return fmt.Errorf("read the cluster's CA certificate from %s: %w", addr, err)
	}
	caDER, err := CADER(caPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	if got := sha256.Sum256(caDER); subtle.ConstantTimeCompare(got[:], want) != 1 {
		return fmt.Errorf("%s serves a CA that is not the one this join token was made for: refusing to send the token", addr)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the other side showed no certificate")
			}
			_, err := verifyNode(cs.PeerCertificates[0], pool, x509.ExtKeyUsageServerAuth, cs.PeerCertificates[1:]...)
			return err
		},
	}}}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: id, Organization: []string{"v9"}}, DNSNames: o.DNSNames, IPAddresses: o.IPs,
	}, key)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(&JoinRequest{Token: token, NodeID: id, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+JoinCertPath, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s for a certificate: %w", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the cluster refused the join token: %s", strings.TrimSpace(string(b)))
	}
	var ans JoinAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return fmt.Errorf("the cluster's answer: %w", err)
	}
	cb, _ := pem.Decode([]byte(ans.Certificate))
	if cb == nil {
		return errors.New("the cluster's answer holds no certificate")
	}
	leaf, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return err
	}
	if got, err := verifyNode(leaf, pool, x509.ExtKeyUsageClientAuth); err != nil || got != id {
		return fmt.Errorf("the certificate the cluster sent is not a node certificate for %q: %v", id, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, CACertFile), caPEM, 0o644); err != nil {
		return err
	}
	return writePair(dir, NodeCertFile(id), NodeKeyFile(id), cb.Bytes, key)
}

func getBody(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}
