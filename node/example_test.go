package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	memoryv1 "github.com/creto-systems/creto/api/creto/memory/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/node"
	"github.com/creto-systems/creto/services/consensus"
)

// A platform registers two agents over gRPC; one remembers its reasoning
// and lets the other read it through an NHI delegation, until it revokes
// the grant.
func Example_identityAndMemory() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "creto-node")
	defer os.RemoveAll(dir)
	n, err := node.Open(ctx, node.Config{Server: node.ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		Consensus: consensus.Config{BindAddress: "127.0.0.1:0"}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		log.Fatal(err)
	}
	if err := n.Start(); err != nil {
		log.Fatal(err)
	}
	defer n.Shutdown(ctx)

	// The platform is an operator: the node's development CA issued its
	// client certificate.
	operator := dial(n, dir, pki.DefaultOperator, "")
	defer operator.Close()
	ids := nhiv1.NewNhiServiceClient(operator)
	tokens := map[string]string{}
	for _, id := range []string{"payments", "approver"} {
		_, err := ids.RegisterAgent(ctx, &nhiv1.RegisterAgentRequest{Agent: &nhiv1.AgentIdentity{
			Id: id, Type: nhiv1.AgentType_AGENT_TYPE_ASSISTANT, OwnerId: "alice"}})
		if err != nil {
			log.Fatal(err)
		}
		issued, err := ids.IssueToken(ctx, &nhiv1.IssueTokenRequest{AgentId: id})
		if err != nil {
			log.Fatal(err)
		}
		tokens[id] = issued.GetToken()
	}

	// Agents authenticate with their tokens.
	payments, approverConn := dial(n, dir, "", tokens["payments"]), dial(n, dir, "", tokens["approver"])
	defer payments.Close()
	defer approverConn.Close()
	approver := memoryv1.NewMemoryServiceClient(approverConn)
	_, err = memoryv1.NewMemoryServiceClient(payments).Store(ctx, &memoryv1.StoreRequest{
		Content: "Invoice 42 matches PO-991, so I will pay Acme by wire transfer",
		Type:    memoryv1.MemoryType_MEMORY_TYPE_REASONING, Metadata: map[string]string{"action_id": "pay-42"}})
	if err != nil {
		log.Fatal(err)
	}
	ask := &memoryv1.QueryRequest{Agent: &nhiv1.AgentIdentity{Id: "payments"}, Query: "wire transfer to Acme"}
	_, err = approver.Query(ctx, ask)
	fmt.Println("before the grant:", status.Code(err))

	grant, err := nhiv1.NewNhiServiceClient(payments).CreateDelegation(ctx, &nhiv1.CreateDelegationRequest{
		DelegateeId: "approver", Permissions: []string{"memory:read"}})
	if err != nil {
		log.Fatal(err)
	}
	res, err := approver.Query(ctx, ask)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.GetResults() {
		fmt.Printf("with the grant: %.2f %s\n", r.GetRelevanceScore(), r.GetMemory().GetContent())
	}

	if _, err := nhiv1.NewNhiServiceClient(payments).RevokeDelegation(ctx, &nhiv1.RevokeDelegationRequest{DelegationId: grant.GetDelegation().GetId()}); err != nil {
		log.Fatal(err)
	}
	_, err = approver.Query(ctx, ask)
	fmt.Println("after revoking it:", status.Code(err))
	// Output:
	// before the grant: PermissionDenied
	// with the grant: 0.46 Invoice 42 matches PO-991, so I will pay Acme by wire transfer
	// after revoking it: PermissionDenied
}

// dial connects to the node over TLS, trusting its development CA, as the
// named operator (its client certificate) or with an agent's token.
func dial(n *node.Node, dir, operator, token string) *grpc.ClientConn {
	tlsDir := filepath.Join(dir, "tls")
	ca, err := os.ReadFile(filepath.Join(tlsDir, pki.CACert))
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS13}
	if operator != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, operator+".crt"), filepath.Join(tlsDir, operator+".key"))
		if err != nil {
			log.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(token)))
	}
	conn, err := grpc.NewClient(n.GRPCAddr().String(), opts...)
	if err != nil {
		log.Fatal(err)
	}
	return conn
}

// bearerToken sends an NHI token as "authorization: Bearer <token>".
type bearerToken string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }
