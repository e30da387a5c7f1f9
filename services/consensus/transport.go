package consensus

import (
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// StreamLayer carries raft's traffic between nodes: a listener for
// incoming connections and a dialer for outgoing ones. The default is
// plain TCP on Config.BindAddress. raft's TCP transport is plaintext, so a
// production cluster plugs in mutual TLS here: a tls.Listener and a
// tls.Dialer with the node's certificate, verifying the peer's (the way
// Vault secures its cluster port).
type StreamLayer interface {
	net.Listener
	// Dial opens a connection to another node's advertised address.
	Dial(address string, timeout time.Duration) (net.Conn, error)
}

// tcpLayer is the default StreamLayer.
type tcpLayer struct{ net.Listener }

func listenTCP(address string) (tcpLayer, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return tcpLayer{}, err
	}
	return tcpLayer{ln}, nil
}

func (tcpLayer) Dial(address string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", address, timeout)
}

// streamAdapter presents a StreamLayer to raft, reporting the advertised
// address as the local one: raft tells its peers to dial Addr().
type streamAdapter struct {
	StreamLayer
	advertise advertisedAddr
}

func (s streamAdapter) Addr() net.Addr { return s.advertise }

func (s streamAdapter) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.StreamLayer.Dial(string(address), timeout)
}

// advertisedAddr is a host:port other nodes dial.
type advertisedAddr string

func (advertisedAddr) Network() string  { return "tcp" }
func (a advertisedAddr) String() string { return string(a) }
