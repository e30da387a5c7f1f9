// Package pki is the node's development certificate authority: on a
// node's first start without configured certificates it creates a CA, a
// server certificate for the loopback names and an operator client
// certificate, so that mTLS works from the first minute with no setup.
//
// It is for development and tests. Production nodes are given
// certificates from the operator's own PKI (server.tls_cert, tls_key,
// client_ca). TLS itself is crypto/tls's: certificates use ECDSA P-256,
// which every TLS stack accepts.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TrustDomain names the development CA's SPIFFE trust domain: operator
// certificates carry spiffe://creto.local/operator/<name>.
const TrustDomain = "creto.local"

// File names in a development PKI directory.
const (
	CACert     = "ca.crt"
	caKey      = "ca.key"
	ServerCert = "server.crt"
	ServerKey  = "server.key"
	// DefaultOperator is the operator certificate created with the CA.
	DefaultOperator = "admin"
)

// Validity of development certificates.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
)

// Dev is a development PKI kept in a directory.
type Dev struct {
	Dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// EnsureDev opens the development PKI in dir, creating the CA, the server
// certificate (for hosts) and the default operator's certificate when they
// are missing. created reports whether the CA was new.
func EnsureDev(dir string, hosts []string) (d *Dev, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("pki: %w", err)
	}
	d, err = openDev(dir)
	if errors.Is(err, fs.ErrNotExist) {
		d, err = createDev(dir)
		created = true
	}
	if err != nil {
		return nil, false, err
	}
	if _, err := os.Stat(filepath.Join(dir, ServerCert)); errors.Is(err, fs.ErrNotExist) {
		if err := d.Issue(dir, "server", hosts, true); err != nil {
			return nil, false, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, DefaultOperator+".crt")); errors.Is(err, fs.ErrNotExist) {
		if err := d.Issue(dir, DefaultOperator, nil, false); err != nil {
			return nil, false, err
		}
	}
	return d, created, nil
}

func openDev(dir string) (*Dev, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACert))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, caKey))
	if err != nil {
		return nil, fmt.Errorf("pki: %s exists but its key does not: %w", CACert, err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("pki: ca.key is not PEM")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: ca.key: %w", err)
	}
	return &Dev{Dir: dir, cert: cert, key: key}, nil
}

func createDev(dir string) (*Dev, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Creto development CA", Organization: []string{"Creto"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	d := &Dev{Dir: dir, cert: cert, key: key}
	if err := d.write(dir, "ca", der, key); err != nil {
		return nil, err
	}
	return d, nil
}

// Issue writes name.crt and name.key into outDir, signed by the CA: a
// server certificate for hosts (DNS names or IP addresses) when server is
// true, else an operator client certificate for the operator called name.
func (d *Dev) Issue(outDir, name string, hosts []string, server bool) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "ca" {
		return fmt.Errorf("pki: invalid certificate name %q", name)
	}
	tmpl := leafTemplate(name)
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.URIs = []*url.URL{OperatorURI(name)}
	}
	return d.sign(outDir, name, tmpl)
}

// leafTemplate is the part every certificate the CA issues shares.
func leafTemplate(commonName string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"Creto"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
}

// sign issues tmpl for a fresh key and writes name.crt and name.key into
// outDir.
func (d *Dev) sign(outDir, name string, tmpl *x509.Certificate) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, d.cert, &key.PublicKey, d.key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return d.write(outDir, name, der, key)
}

// OperatorURI is the SPIFFE id an operator certificate carries.
func OperatorURI(name string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: "/operator/" + name}
}

// OperatorName returns the operator a verified client certificate names:
// the last element of a spiffe://…/operator/<name> URI, else the common
// name.
func OperatorName(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" {
			if dir, name := filepath.Split(u.Path); strings.HasSuffix(dir, "/operator/") && name != "" {
				return name
			}
		}
	}
	return cert.Subject.CommonName
}

func (d *Dev) write(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile writes through a temporary file and a rename, so a crash
// never leaves a half-written key that a restart would then trust.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("pki: not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}
