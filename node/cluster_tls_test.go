package node

import (
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/pki"
)

// peerFor loads the node certificate of id from a development PKI in dir.
func peerFor(t testing.TB, dir, id string) *peerTLS {
	t.Helper()
	n := &Node{cfg: Config{Server: ServerConfig{PKIDir: dir}}}
	p, err := n.loadPeerTLS(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// exchange sends a line from a dialled connection and reports what the
// raft layer's side of it read, or its error.
func exchange(t *testing.T, l *raftTLS, dial func() (net.Conn, error)) (string, error) {
	t.Helper()
	got := make(chan string, 1)
	failed := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			failed <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil {
			failed <- err
			return
		}
		got <- string(b)
		_, _ = c.Write([]byte("ok"))
	}()
	c, err := dial()
	if err == nil {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err = c.Write([]byte("hello")); err == nil {
			_, err = io.ReadFull(c, make([]byte, 2))
		}
	}
	select {
	case s := <-got:
		return s, err
	case serr := <-failed:
		return "", serr
	case <-time.After(10 * time.Second):
		t.Fatal("no exchange")
		return "", nil
	}
}

// Raft traffic is mutual TLS between nodes of one CA: nothing else gets
// through, in either direction.
func TestRaftTransportIsMutualTLSBetweenNodes(t *testing.T) {
	dir := t.TempDir()
	n1, n2 := peerFor(t, dir, "n1"), peerFor(t, dir, "n2")
	l, err := listenRaftTLS("127.0.0.1:0", n1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	dialer, err := listenRaftTLS("127.0.0.1:0", n2)
	if err != nil {
		t.Fatal(err)
	}
	defer dialer.Close()

	if got, err := exchange(t, l, func() (net.Conn, error) { return dialer.Dial(addr, 5*time.Second) }); err != nil || got != "hello" {
		t.Fatalf("node to node: %q %v", got, err)
	}

	// A node of another CA is refused, and refuses.
	other := peerFor(t, t.TempDir(), "n3")
	stranger, err := listenRaftTLS("127.0.0.1:0", other)
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if got, err := exchange(t, l, func() (net.Conn, error) { return stranger.Dial(addr, 5*time.Second) }); err == nil || got != "" {
		t.Fatalf("another CA's node got through: %q", got)
	}
	if got, err := exchange(t, stranger, func() (net.Conn, error) { return dialer.Dial(stranger.Addr().String(), 5*time.Second) }); err == nil || got != "" {
		t.Fatalf("dialled another CA's node: %q", got)
	}

	// An operator certificate of the same CA is no node.
	op, err := tls.LoadX509KeyPair(filepath.Join(dir, pki.DefaultOperator+".crt"), filepath.Join(dir, pki.DefaultOperator+".key"))
	if err != nil {
		t.Fatal(err)
	}
	asOperator := &raftTLS{client: &tls.Config{Certificates: []tls.Certificate{op}, RootCAs: n1.roots, ServerName: "x",
		InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}}
	if got, err := exchange(t, l, func() (net.Conn, error) { return asOperator.Dial(addr, 5*time.Second) }); err == nil || got != "" {
		t.Fatalf("an operator certificate got through: %q", got)
	}

	// Neither does plain TCP, nor TLS without a certificate.
	if got, err := exchange(t, l, func() (net.Conn, error) { return net.Dial("tcp", addr) }); err == nil || got != "" {
		t.Fatalf("plaintext got through: %q", got)
	}
	anonymous := &raftTLS{client: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}}
	if got, err := exchange(t, l, func() (net.Conn, error) { return anonymous.Dial(addr, 5*time.Second) }); err == nil || got != "" {
		t.Fatalf("no certificate got through: %q", got)
	}
}

// A node certificate that does not name the node, or is no node
// certificate at all, stops the node at start.
func TestNodeCertificateMustNameTheNode(t *testing.T) {
	dir := t.TempDir()
	dev, _, err := pki.EnsureDev(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := dev.EnsureNode("someone-else")
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, pki.CACert)
	for name, s := range map[string]ServerConfig{
		"another node's": {NodeCert: otherCert, NodeKey: otherKey, ClientCA: ca},
		"an operator's":  {NodeCert: filepath.Join(dir, "admin.crt"), NodeKey: filepath.Join(dir, "admin.key"), ClientCA: ca},
		"another CA's":   {NodeCert: otherCert, NodeKey: otherKey, ClientCA: filepath.Join(peerDir(t), pki.CACert)},
	} {
		n := &Node{cfg: Config{Server: s}}
		if _, err := n.loadPeerTLS("n1"); err == nil || !strings.Contains(err.Error(), "node certificate") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// With the right one the node starts.
	cert, key, err := dev.EnsureNode("n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Node{cfg: Config{Server: ServerConfig{NodeCert: cert, NodeKey: key, ClientCA: ca}}}).loadPeerTLS("n1"); err != nil {
		t.Fatal(err)
	}
}

// peerDir is a fresh development PKI.
func peerDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, _, err := pki.EnsureDev(dir, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}
