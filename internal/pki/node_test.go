package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

func TestNodeCertificates(t *testing.T) {
	dir := t.TempDir()
	dev, created, err := EnsureDev(dir, []string{"localhost"})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	certFile, keyFile, err := dev.EnsureNode("node-1")
	if err != nil {
		t.Fatal(err)
	}
	if certFile != filepath.Join(dir, NodesDir, "node-1.crt") || keyFile != filepath.Join(dir, NodesDir, "node-1.key") {
		t.Fatalf("files %s %s", certFile, keyFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if name, ok := NodeName(leaf); !ok || name != "node-1" {
		t.Fatalf("NodeName = %q, %v", name, ok)
	}
	if leaf.Subject.CommonName != "node:node-1" || OperatorName(leaf) == "node-1" {
		t.Fatalf("a node certificate must not read as operator node-1: CN %q", leaf.Subject.CommonName)
	}
	// The CA accepts it for both ends of mutual TLS.
	caPEM, err := os.ReadFile(filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("usage %v: %v", usage, err)
		}
	}

	// A second call, from another node's process sharing the PKI, finds it
	// rather than issuing another.
	again, _, err := EnsureDev(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := again.EnsureNode("node-1"); err != nil {
		t.Fatal(err)
	}
	pair2, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || !pair2.Leaf.Equal(leaf) {
		t.Fatalf("the node certificate was issued again: %v", err)
	}

	// Operator certificates name no node.
	op, err := tls.LoadX509KeyPair(filepath.Join(dir, DefaultOperator+".crt"), filepath.Join(dir, DefaultOperator+".key"))
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := NodeName(op.Leaf); ok {
		t.Fatalf("an operator certificate names node %q", name)
	}
}

func TestNodeIDsThatCannotNameFiles(t *testing.T) {
	dev, _, err := EnsureDev(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", ".", "..", ".hidden", "a/b", `a\b`, "a b", "ü", string(make([]byte, 65))} {
		if ValidNodeID(id) {
			t.Errorf("%q accepted", id)
		}
		if _, _, err := dev.EnsureNode(id); err == nil {
			t.Errorf("EnsureNode(%q) issued a certificate", id)
		}
	}
	for _, id := range []string{"n1", "node-1.example_2", "A"} {
		if !ValidNodeID(id) {
			t.Errorf("%q refused", id)
		}
	}
}

func TestNodeNameReadsOnlyNodeURIs(t *testing.T) {
	for path, want := range map[string]string{"/node/n1": "n1", "/node/": "", "/operator/n1": "", "/x/node/n1": "", "/node/a/b": ""} {
		u := NodeURI("x")
		u.Path = path
		got, ok := NodeName(&x509.Certificate{URIs: []*url.URL{u}})
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v", path, got, ok)
		}
	}
}
