package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/client"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/node"
	"github.com/creto-systems/creto/services/consensus"
)

var bg = context.Background()

// TestMain quiets the default logger, which some of the node's services
// log to, unless the tests run with -v.
func TestMain(m *testing.M) {
	flag.Parse()
	slog.SetDefault(testLogger())
	if cfg := os.Getenv(crashChildEnv); cfg != "" {
		crashChild(cfg)
	}
	os.Exit(m.Run())
}

// testNode is a real node serving on loopback ports the kernel chose,
// with its own data directory and a development PKI (its own, or the one
// it shares with the cluster it joined).
type testNode struct {
	*node.Node
	t   testing.TB
	dir string
	pki string
}

// startNode opens and starts a node on dir (a fresh one when empty); it
// is shut down at the end of the test unless stop ran first.
func startNode(t testing.TB, dir string) *testNode {
	t.Helper()
	return startNodeWith(t, dir, nil)
}

// startNodeWith is startNode with mutate adjusting the node's
// configuration first.
func startNodeWith(t testing.TB, dir string, mutate func(*node.Config)) *testNode {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := node.Config{Server: node.ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second},
		Consensus: testConsensus("")}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := node.Open(bg, cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{Node: n, t: t, dir: dir, pki: cfg.Server.PKIDir}
	if tn.pki == "" {
		tn.pki = filepath.Join(dir, "tls")
	}
	t.Cleanup(tn.stop)
	return tn
}

// testConsensus is a node's [consensus] section for tests: raft on a port
// the kernel picks (the default, 7400, would collide with any other node
// on the machine) and timeouts short enough that a one-node cluster elects
// itself at once rather than after a second. id names a cluster member;
// join lists the gRPC addresses it joins through.
func testConsensus(id string, join ...string) consensus.Config {
	return consensus.Config{NodeID: id, Join: join, BindAddress: "127.0.0.1:0", LogSegmentBytes: 1 << 20,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 25 * time.Millisecond}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// stop shuts the node down; calling it twice is harmless.
func (tn *testNode) stop() {
	if tn.Node == nil {
		return
	}
	if err := tn.Shutdown(bg); err != nil {
		tn.t.Errorf("shutdown: %v", err)
	}
	tn.Node = nil
}

func (tn *testNode) tlsFile(name string) string { return filepath.Join(tn.pki, name) }

// transport reaches the node at addr (its own, or a proxy's) as the
// development operator.
func (tn *testNode) transport(addr string) client.Transport {
	return client.Transport{Endpoint: addr, TLSCA: tn.tlsFile(pki.CACert),
		TLSCert: tn.tlsFile(pki.DefaultOperator + ".crt"), TLSKey: tn.tlsFile(pki.DefaultOperator + ".key"),
		TLSServerName: "localhost"}
}

// config is a client configuration for the node at addr with timeouts
// generous enough for a busy machine under the race detector; the tests
// of the timeouts themselves set the seed's.
func (tn *testNode) config(addr string) client.Config {
	cfg := client.Config{Transport: tn.transport(addr)}
	for _, s := range []*client.ServiceConfig{&cfg.Authz.ServiceConfig, &cfg.NHI.ServiceConfig, &cfg.Memory.ServiceConfig, &cfg.Vault.ServiceConfig,
		&cfg.Storage.ServiceConfig, &cfg.Audit.ServiceConfig, &cfg.Consensus.ServiceConfig} {
		s.TimeoutMS, s.ConnectTimeoutMS = 5000, 5000
	}
	return cfg
}

// agentConfig is config for an agent: no client certificate, since the
// node would take it over the agent's token.
func (tn *testNode) agentConfig(addr string) client.Config {
	cfg := tn.config(addr)
	cfg.TLSCert, cfg.TLSKey = "", ""
	return cfg
}

// clients builds every client for the node at addr, closed at the end of
// the test.
func (tn *testNode) clients(t testing.TB, cfg client.Config, opts ...client.Option) *client.Clients {
	t.Helper()
	c, err := client.New(cfg, append([]client.Option{client.WithLogger(testLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// operator is a raw gRPC connection as the development operator, for
// setting a node up with calls the clients do not offer.
func (tn *testNode) operator() *grpc.ClientConn {
	tn.t.Helper()
	cert, err := tls.LoadX509KeyPair(tn.tlsFile(pki.DefaultOperator+".crt"), tn.tlsFile(pki.DefaultOperator+".key"))
	if err != nil {
		tn.t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: tn.roots(), Certificates: []tls.Certificate{cert}, ServerName: "localhost", MinVersion: tls.VersionTLS13}
	conn, err := grpc.NewClient(tn.GRPCAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { conn.Close() })
	return conn
}

// agentConn is a raw gRPC connection as the agent whose token it sends.
func (tn *testNode) agentConn(token string) *grpc.ClientConn {
	tn.t.Helper()
	cfg := &tls.Config{RootCAs: tn.roots(), ServerName: "localhost", MinVersion: tls.VersionTLS13}
	conn, err := grpc.NewClient(tn.GRPCAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithPerRPCCredentials(bearer(token)))
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { conn.Close() })
	return conn
}

// bearer sends an NHI token with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

func (tn *testNode) roots() *x509.CertPool {
	ca, err := os.ReadFile(tn.tlsFile(pki.CACert))
	if err != nil {
		tn.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return pool
}

// readPolicy lets agents read documents; everything else is denied.
const readPolicy = `@id("agents-read") permit (principal is Agent, action == Action::"read", resource is Document);`

// seed loads readPolicy and registers agents, returning a token for each.
func (tn *testNode) seed(agents ...string) map[string]string {
	tn.t.Helper()
	conn := tn.operator()
	if _, err := authzv1.NewAuthorizationServiceClient(conn).CreatePolicy(bg, &authzv1.CreatePolicyRequest{Text: readPolicy}); err != nil {
		tn.t.Fatal(err)
	}
	ids := nhiv1.NewNhiServiceClient(conn)
	tokens := map[string]string{}
	for _, id := range agents {
		if _, err := ids.RegisterAgent(bg, &nhiv1.RegisterAgentRequest{Agent: &nhiv1.AgentIdentity{
			Id: id, Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice"}}); err != nil {
			tn.t.Fatal(err)
		}
		issued, err := ids.IssueToken(bg, &nhiv1.IssueTokenRequest{AgentId: id})
		if err != nil {
			tn.t.Fatal(err)
		}
		tokens[id] = issued.GetToken()
	}
	return tokens
}

// requests returns the node's count of calls to a method of a service
// (short name, "authz"), whatever their outcome, read from its /metrics:
// what the server saw.
func (tn *testNode) requests(service, method string) float64 {
	tn.t.Helper()
	resp, err := tn.https().Get("https://" + tn.HTTPAddr().String() + "/metrics")
	if err != nil {
		tn.t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tn.t.Fatal(err)
	}
	var n float64
	for _, m := range families[service+"_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" && l.GetValue() == method {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// https is an HTTP client that trusts the node's development CA, for its
// HTTP listener.
func (tn *testNode) https() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tn.roots(), ServerName: "localhost"}}, Timeout: 10 * time.Second}
}

// newProxy starts an in-process toxiproxy between the clients and
// upstream: real TCP on loopback, with faults injected on demand.
func newProxy(t testing.TB, upstream string) *toxiproxy.Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, strings.ReplaceAll(t.Name(), "/", "_"), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// addToxic adds a toxic to a proxy, for example latency on the answers:
// {"type": "latency", "stream": "downstream", "attributes": {"latency": 500}}.
func addToxic(t testing.TB, p *toxiproxy.Proxy, name, typ, stream string, attrs string) {
	t.Helper()
	body := fmt.Sprintf(`{"name": %q, "type": %q, "stream": %q, "attributes": %s}`, name, typ, stream, attrs)
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

func removeToxic(t testing.TB, p *toxiproxy.Proxy, name string) {
	t.Helper()
	if err := p.Toxics.RemoveToxic(bg, name); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or the deadline passes. For what
// no clock can be injected into: a node's state, a connection coming up.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// agentCheck is a check of an agent reading a document.
func agentCheck(agent, doc string) client.CheckRequest {
	return client.CheckRequest{Principal: client.Principal{ID: agent}, Action: "read", Resource: `Document::"` + doc + `"`}
}

func ptr[T any](v T) *T { return &v }
