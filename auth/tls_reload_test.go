package auth

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// NodeTLS promises that a change of the files that does not make a valid node identity
// keeps the last good material (and is reported by Err); LoadNodeTLS refuses such files at
// start. But the reload only checks that the certificate matches its key: a certificate
// renewed with the wrong CA (a second `v9 tls ca create`, another cluster's) is taken on the
// next handshake, and the node, presenting a certificate no peer trusts, drops out of the
// cluster while it ran fine before the change.
func TestReloadKeepsLastGoodOnCertificateOfAnotherCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := CreateNodeCert(dir, "n1", NodeCertOptions{}); err != nil {
		t.Fatal(err)
	}
	files := TLSDirFiles(dir, "n1")
	nt, err := LoadNodeTLS(files)
	if err != nil {
		t.Fatal(err)
	}
	good := nt.current().cert.Leaf.SerialNumber

	// A renewal made with another CA lands in place of the node's files.
	other := filepath.Join(t.TempDir(), "other")
	if err := CreateCA(other); err != nil {
		t.Fatal(err)
	}
	if err := CreateNodeCert(other, "n1", NodeCertOptions{}); err != nil {
		t.Fatal(err)
	}
	of := TLSDirFiles(other, "n1")
	for _, p := range [][2]string{{of.Key, files.Key}, {of.Cert, files.Cert}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadNodeTLS(files); err == nil {
		t.Fatal("LoadNodeTLS accepts a certificate of another CA: the premise of this test is wrong")
	}
	deadline := time.Now().Add(10 * time.Second)
	for nt.Err() == nil && nt.current().cert.Leaf.SerialNumber.Cmp(good) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the reload never looked at the new files")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := nt.current().cert.Leaf; got.SerialNumber.Cmp(good) != 0 {
		t.Errorf("after the files changed to a certificate of another CA, the node presents it (issuer %q, serial %v) instead of keeping its last good one; Err = %v",
			got.Issuer.CommonName, got.SerialNumber, nt.Err())
	}
	if nt.Err() == nil {
		t.Error("Err reports nothing about a certificate the cluster's CA did not sign")
	}
}
