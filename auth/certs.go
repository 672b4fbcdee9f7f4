package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// NodeDNSName is the DNS name every node certificate carries and every node checks on the
// other side of a connection, as Nomad checks server.<region>.nomad: a certificate of the
// cluster CA without it (one made for something else) is not a node's.
const NodeDNSName = "node.v9"

// File names under a TLS directory (v9 tls ... --dir, agent --tls-dir).
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// NodeCertFile and NodeKeyFile are the names of node id's certificate and key.
func NodeCertFile(id string) string { return "node-" + id + ".pem" }

// NodeKeyFile is the name of node id's private key file.
func NodeKeyFile(id string) string { return "node-" + id + "-key.pem" }

// Validity of what CreateCA and CreateNodeCert make.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	NodeValidity = 2 * 365 * 24 * time.Hour
)

// CreateCA writes a new cluster CA (ECDSA P-256) into dir: ca.pem and ca-key.pem (0600).
// It refuses to overwrite an existing CA.
func CreateCA(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return fmt.Errorf("%s already holds a CA (%s): refusing to overwrite it", dir, CAKeyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "v9 cluster CA", Organization: []string{"v9"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writePair(dir, CACertFile, CAKeyFile, der, key)
}

// NodeCertOptions are extra names for a node certificate (for users who reach the API over
// TLS by name or address).
type NodeCertOptions struct {
	DNSNames []string
	IPs      []net.IP
	Validity time.Duration // 0: NodeValidity
}

// CreateNodeCert writes a certificate and key for node id, signed by the CA in dir, into
// dir: node-<id>.pem and node-<id>-key.pem (0600). It names the node in its common name and
// in the DNS names node.v9 and <id>.node.v9, and serves both as server and client.
func CreateNodeCert(dir, id string, o NodeCertOptions) error {
	if id == "" {
		return errors.New("a node certificate needs a node id")
	}
	caCert, caKey, err := loadCA(dir)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := signNode(caCert, caKey, id, &key.PublicKey, o)
	if err != nil {
		return err
	}
	return writePair(dir, NodeCertFile(id), NodeKeyFile(id), der, key)
}

// signNode makes the certificate of node id for public key pub, signed by the CA.
func signNode(caCert *x509.Certificate, caKey *ecdsa.PrivateKey, id string, pub any, o NodeCertOptions) ([]byte, error) {
	validity := o.Validity
	if validity == 0 {
		validity = NodeValidity
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id, Organization: []string{"v9"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     append([]string{NodeDNSName, id + "." + NodeDNSName, "localhost"}, o.DNSNames...),
		IPAddresses:  append([]net.IP{net.IPv4(127, 0, 0, 1)}, o.IPs...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("create node certificate: %w", err)
	}
	return der, nil
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read the CA: %w (create one with `v9 tls ca create`)", err)
	}
	kb, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read the CA key: %w", err)
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		return nil, nil, errors.New("the CA files are not PEM")
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse the CA certificate: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse the CA key: %w", err)
	}
	return cert, key, nil
}

func writePair(dir, certName, keyName string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile replaces path atomically, so a reloading reader never sees half a file.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
