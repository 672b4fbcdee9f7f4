package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
)

// FuzzParseCSR: a joining node's certificate request is outside input; parsing never
// panics, and what passes names the node asked for and no other node's DNS name.
func FuzzParseCSR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "n4"}, DNSNames: []string{"n1.node.v9", "host.example"}}, key)
	f.Add(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), "n4")
	f.Add("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "n4")
	f.Fuzz(func(t *testing.T, p, id string) {
		csr, err := parseCSR(p, id)
		if err != nil {
			return
		}
		if csr.Subject.CommonName != id {
			t.Fatalf("passed a request for %q as %q", csr.Subject.CommonName, id)
		}
		for _, n := range csr.DNSNames {
			if n == NodeDNSName || strings.HasSuffix(n, "."+NodeDNSName) {
				t.Fatalf("kept node name %q", n)
			}
		}
	})
}

func TestJoinTokenCarriesTheCA(t *testing.T) {
	tok := NewJoinSecret([]byte("ca"))
	if _, err := joinCAHash(tok); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "v9s_abc", JoinTokenPrefix + "zz_x", JoinTokenPrefix + strings.Repeat("a", 64)} {
		if _, err := joinCAHash(bad); err == nil {
			t.Fatalf("%q passed as a join token", bad)
		}
	}
}
