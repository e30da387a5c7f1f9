package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/creto-systems/creto/internal/pki"
)

// peerTLS is the node's identity among the cluster's nodes: its node
// certificate, and the CA that signed every node's (server.client_ca, or
// the development CA). Both ends of the raft transport present and verify
// node certificates, and a node presents its own when it calls a member's
// gRPC port (to join, to reach the leader).
type peerTLS struct {
	cert  tls.Certificate
	roots *x509.CertPool
}

// loadPeerTLS loads the node certificate of node id: server.node_cert, or
// the one the development PKI issues (server.pki_dir/nodes/<id>.crt). It
// refuses a certificate that does not name this node or that the cluster
// CA does not accept for both ends of a connection, so a mistake shows at
// start rather than as failed handshakes.
func (n *Node) loadPeerTLS(id string) (*peerTLS, error) {
	s := n.cfg.Server
	certFile, keyFile, caFile := s.NodeCert, s.NodeKey, s.ClientCA
	if certFile == "" {
		dev, _, err := pki.EnsureDev(s.PKIDir, loopbackHosts)
		if err != nil {
			return nil, err
		}
		if certFile, keyFile, err = dev.EnsureNode(id); err != nil {
			return nil, fmt.Errorf("config: consensus.node_id: %w", err)
		}
		caFile = filepath.Join(dev.Dir, pki.CACert)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("config: node certificate: %w", err)
	}
	caPEM, err := readFile("server.client_ca", caFile)
	if err != nil {
		return nil, err
	}
	p := &peerTLS{cert: cert, roots: x509.NewCertPool()}
	if !p.roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("config: %s holds no PEM certificate", caFile)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if err := p.verify(cert.Leaf, cert.Certificate[1:], usage); err != nil {
			return nil, fmt.Errorf("config: node certificate %s: %w", certFile, err)
		}
	}
	if name, _ := pki.NodeName(cert.Leaf); name != id {
		return nil, fmt.Errorf("config: node certificate %s names node %q, not consensus.node_id %q", certFile, name, id)
	}
	return p, nil
}

// loopbackHosts are the names the development server certificate covers.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// verify checks a certificate chain against the cluster CA for usage, and
// that it names a node. Host names are not checked: nodes know each other
// by the node ids their certificates carry, not by the addresses they
// dial, which move.
func (p *peerTLS) verify(leaf *x509.Certificate, intermediates [][]byte, usage x509.ExtKeyUsage) error {
	pool := x509.NewCertPool()
	for _, der := range intermediates {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		pool.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return err
	}
	if _, ok := pki.NodeName(leaf); !ok {
		return errors.New("the certificate names no node (spiffe://…/node/<id>)")
	}
	return nil
}

// verifyPeer is a VerifyConnection callback demanding a node certificate
// of the cluster CA from the other end, valid for usage.
func (p *peerTLS) verifyPeer(usage x509.ExtKeyUsage) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the peer presented no certificate")
		}
		var intermediates [][]byte
		for _, c := range cs.PeerCertificates[1:] {
			intermediates = append(intermediates, c.Raw)
		}
		if err := p.verify(cs.PeerCertificates[0], intermediates, usage); err != nil {
			return fmt.Errorf("peer certificate: %w", err)
		}
		return nil
	}
}

// raftTLS carries raft traffic over mutual TLS 1.3: the listener admits
// only nodes of the cluster CA, and the dialer talks only to them.
type raftTLS struct {
	net.Listener
	client *tls.Config
}

// listenRaftTLS listens on address for raft traffic.
func listenRaftTLS(address string, p *peerTLS) (*raftTLS, error) {
	server := &tls.Config{
		Certificates: []tls.Certificate{p.cert},
		// The chain is verified by verifyPeer, which also demands a node.
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: p.verifyPeer(x509.ExtKeyUsageClientAuth),
		MinVersion:       tls.VersionTLS13,
	}
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("node: raft listener: %w", err)
	}
	return &raftTLS{
		Listener: tls.NewListener(ln, server),
		client: &tls.Config{
			Certificates: []tls.Certificate{p.cert},
			// Verified by verifyPeer against the cluster CA, without a host
			// name: the peer is known by its node certificate.
			InsecureSkipVerify: true,
			VerifyConnection:   p.verifyPeer(x509.ExtKeyUsageServerAuth),
			MinVersion:         tls.VersionTLS13,
		},
	}, nil
}

// Dial opens a connection to another node, the TLS handshake included in
// the timeout.
func (l *raftTLS) Dial(address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: l.client}
	return d.DialContext(ctx, "tcp", address)
}

// grpcCredentials are the credentials of this node's calls to another
// node's gRPC port: its node certificate, and the cluster CA to verify the
// member's server certificate (with its host name, as any client does).
func (p *peerTLS) grpcCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{p.cert},
		RootCAs:      p.roots,
		MinVersion:   tls.VersionTLS13,
	})
}
