package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Node certificates identify the nodes of a cluster to each other: on the
// raft transport, which runs mutual TLS in both directions, and on the
// gRPC port of a member a node joins through. A node certificate carries
// spiffe://creto.local/node/<id>, its common name is "node:<id>" (so it
// never reads as an operator of the same name), and it is good for both
// ends of a TLS connection.

// NodesDir is the directory, inside a development PKI, of the node
// certificates: <dir>/nodes/<id>.crt and <id>.key.
const NodesDir = "nodes"

// NodeURI is the SPIFFE id a node certificate carries.
func NodeURI(id string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: "/node/" + id}
}

// NodeName returns the node a certificate names by its
// spiffe://<trust domain>/node/<id> URI, and whether it names one. It
// does not verify the certificate: callers ask it of verified chains only.
func NodeName(cert *x509.Certificate) (string, bool) {
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if dir, name := path.Split(u.Path); dir == "/node/" && name != "" {
			return name, true
		}
	}
	return "", false
}

// ValidNodeID reports whether id can name a node certificate of the
// development PKI (and its files): 1..64 letters, digits, '.', '_' or
// '-', not starting with '.'.
func ValidNodeID(id string) bool {
	if id == "" || len(id) > 64 || id[0] == '.' {
		return false
	}
	return !strings.ContainsFunc(id, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '.' && r != '_' && r != '-'
	})
}

// EnsureNode returns the certificate and key files of node id in the
// development PKI, issuing them on first use. Every node of a cluster on
// one machine can share one development PKI (server.pki_dir): each finds
// or issues its own node certificate there.
func (d *Dev) EnsureNode(id string) (certFile, keyFile string, err error) {
	if !ValidNodeID(id) {
		return "", "", fmt.Errorf("pki: node id %q cannot name a development certificate: use 1..64 letters, digits, '.', '_' or '-'", id)
	}
	dir := filepath.Join(d.Dir, NodesDir)
	certFile, keyFile = filepath.Join(dir, id+".crt"), filepath.Join(dir, id+".key")
	if _, err := os.Stat(certFile); err == nil {
		return certFile, keyFile, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("pki: %w", err)
	}
	tmpl := leafTemplate("node:" + id)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tmpl.URIs = []*url.URL{NodeURI(id)}
	if err := d.sign(dir, id, tmpl); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
