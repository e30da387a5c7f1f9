package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/services/consensus"
)

// testNode is a node serving on loopback ports chosen by the kernel, with
// its own data directory and development PKI.
type testNode struct {
	*Node
	t   testing.TB
	dir string
	pki string // the development PKI it uses
}

// startNode opens and starts a node on dir (a fresh one when empty),
// letting mutate adjust the configuration first. The node is shut down at
// the end of the test.
func startNode(t testing.TB, dir string, mutate func(*Config)) *testNode {
	t.Helper()
	return startNodeLogging(t, dir, mutate, nil)
}

// startNodeLogging is startNode with the node logging to log (nil: the
// default, discarded unless -v).
func startNodeLogging(t testing.TB, dir string, mutate func(*Config), log *slog.Logger) *testNode {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := Config{Server: ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second},
		Consensus: testConsensus()}
	if mutate != nil {
		mutate(&cfg)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	n, err := Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{Node: n, t: t, dir: dir, pki: n.cfg.Server.PKIDir}
	t.Cleanup(func() { tn.stop() })
	return tn
}

// testConsensus is a [consensus] section for tests: raft on a port the
// kernel picks, and timeouts short enough that a one-node cluster elects
// itself at once.
func testConsensus() consensus.Config {
	return consensus.Config{
		BindAddress:        "127.0.0.1:0",
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 25 * time.Millisecond,
		LogSegmentBytes:    1 << 20,
	}
}

// stop shuts the node down; calling it twice is harmless.
func (tn *testNode) stop() {
	tn.t.Helper()
	if tn.Node == nil {
		return
	}
	if err := tn.Shutdown(context.Background()); err != nil {
		tn.t.Errorf("shutdown: %v", err)
	}
	tn.Node = nil
}

func (tn *testNode) tlsDir() string { return tn.pki }

// clientTLS trusts the node's development CA and presents the named
// client certificate from dir (none when name is empty).
func clientTLS(t testing.TB, caDir, certDir, name string) *tls.Config {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(caDir, pki.CACert))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13}
	if name != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, name+".crt"), filepath.Join(certDir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// dial connects to the node's gRPC port with TLS settings and per-call
// credentials.
func (tn *testNode) dial(cfg *tls.Config, opts ...grpc.DialOption) *grpc.ClientConn {
	tn.t.Helper()
	opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	conn, err := grpc.NewClient(tn.GRPCAddr().String(), opts...)
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { conn.Close() })
	return conn
}

// operator connects as the development CA's default operator.
func (tn *testNode) operator() *grpc.ClientConn {
	return tn.dial(clientTLS(tn.t, tn.tlsDir(), tn.tlsDir(), pki.DefaultOperator))
}

// anonymous connects over TLS with neither certificate nor token.
func (tn *testNode) anonymous() *grpc.ClientConn {
	return tn.dial(clientTLS(tn.t, tn.tlsDir(), "", ""))
}

// agent registers an agent (if new), issues it a token and connects with
// the token as its bearer credential.
func (tn *testNode) agent(id string) *grpc.ClientConn {
	tn.t.Helper()
	token := tn.agentToken(id)
	return tn.dial(clientTLS(tn.t, tn.tlsDir(), "", ""), grpcBearer(token))
}

func (tn *testNode) agentToken(id string) string {
	tn.t.Helper()
	ctx := context.Background()
	if ok, err := tn.nhi.IsRegistered(ctx, id); err != nil {
		tn.t.Fatal(err)
	} else if !ok {
		if _, err := tn.nhi.Register(ctx, nhiAgent(id)); err != nil {
			tn.t.Fatal(err)
		}
	}
	token, err := tn.nhi.IssueToken(ctx, id, time.Hour)
	if err != nil {
		tn.t.Fatal(err)
	}
	return token
}

// bearer sends an NHI token with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

func grpcBearer(token string) grpc.DialOption { return grpc.WithPerRPCCredentials(bearer(token)) }
