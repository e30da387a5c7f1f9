package node_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/node"
	"github.com/creto-systems/creto/services/consensus"
)

// A runtime fetches a delegated secret for a sandbox over gRPC: the
// planner keeps an API key in its namespace and delegates it, single-use,
// to the runtime; the runtime fetches it for one sandbox, bound to it and
// memory-only, and a second fetch is refused.
func Example_delegatedSecretForASandbox() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "creto-node")
	defer os.RemoveAll(dir)
	// The vault unseals itself with a key file the node creates
	// ([vault] unseal = "auto", the default).
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

	operator := dial(n, dir, pki.DefaultOperator, "")
	defer operator.Close()
	ids := nhiv1.NewNhiServiceClient(operator)
	conns := map[string]vaultv1.VaultServiceClient{}
	for _, id := range []string{"planner", "runtime"} {
		if _, err := ids.RegisterAgent(ctx, &nhiv1.RegisterAgentRequest{Agent: &nhiv1.AgentIdentity{
			Id: id, Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice"}}); err != nil {
			log.Fatal(err)
		}
		issued, err := ids.IssueToken(ctx, &nhiv1.IssueTokenRequest{AgentId: id})
		if err != nil {
			log.Fatal(err)
		}
		conn := dial(n, dir, "", issued.GetToken())
		defer conn.Close()
		conns[id] = vaultv1.NewVaultServiceClient(conn)
	}

	key := &vaultv1.SecretRef{Path: "agents/planner/api-keys", Name: "OPENAI_API_KEY"}
	if _, err := conns["planner"].CreateSecret(ctx, &vaultv1.CreateSecretRequest{Reference: key, Value: []byte("sk-live-123"),
		Metadata: &vaultv1.SecretMetadata{Type: vaultv1.SecretType_SECRET_TYPE_API_KEY}}); err != nil {
		log.Fatal(err)
	}
	if _, err := conns["planner"].CreateDelegation(ctx, &vaultv1.CreateDelegationRequest{
		Delegatee: &nhiv1.AgentIdentity{Id: "runtime"}, Secrets: []*vaultv1.SecretRef{key}, Ttl: durationpb.New(15 * time.Minute),
		Restrictions: &vaultv1.DelegationRestrictions{SingleUse: true}}); err != nil {
		log.Fatal(err)
	}

	fetch := &vaultv1.GetDelegatedSecretsRequest{SandboxId: &vaultv1.SandboxId{Id: "sandbox-7"}, References: []*vaultv1.SecretRef{key}}
	resp, err := conns["runtime"].GetDelegatedSecrets(ctx, fetch)
	if err != nil {
		log.Fatal(err)
	}
	s := resp.GetSecrets()[0]
	fmt.Printf("%s = %s, bound to %s, memory-only %v\n", s.GetReference().GetName(), s.GetValue(),
		s.GetRestrictions().GetBoundSandbox().GetId(), s.GetRestrictions().GetMemoryOnly())
	clear(s.Value) // injected: drop the copy

	_, err = conns["runtime"].GetDelegatedSecrets(ctx, fetch)
	fmt.Println("again:", status.Code(err), reasonOf(err))
	// Output:
	// OPENAI_API_KEY = sk-live-123, bound to sandbox-7, memory-only true
	// again: FailedPrecondition DELEGATION_EXHAUSTED
}

// reasonOf returns the ErrorInfo reason a node's error carries.
func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
