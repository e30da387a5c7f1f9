package node_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/node"
	"github.com/creto-systems/creto/services/audit"
)

// An agent logs what it did to the node's audit log over gRPC, and then
// proves the record is in the log on its own side, with standard
// transparency-log tools and nothing but the log's public key. Once the
// node has stopped, the whole log — the agent's record and the node's own
// records of the agent's registration and token — verifies offline, as
// `creto audit verify --data-dir` checks it.
func Example_verifiableAuditLog() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "creto-node")
	defer os.RemoveAll(dir)
	n, err := node.Open(ctx, node.Config{Server: node.ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		log.Fatal(err)
	}
	if err := n.Start(); err != nil {
		log.Fatal(err)
	}

	operator := dial(n, dir, pki.DefaultOperator, "")
	defer operator.Close()
	ids := nhiv1.NewNhiServiceClient(operator)
	if _, err := ids.RegisterAgent(ctx, &nhiv1.RegisterAgentRequest{Agent: &nhiv1.AgentIdentity{
		Id: "payments", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice"}}); err != nil {
		log.Fatal(err)
	}
	issued, err := ids.IssueToken(ctx, &nhiv1.IssueTokenRequest{AgentId: "payments"})
	if err != nil {
		log.Fatal(err)
	}
	conn := dial(n, dir, "", issued.GetToken())
	defer conn.Close()
	agent := auditv1.NewAuditServiceClient(conn)

	// The agent logs its own action: who is the caller.
	logged, err := agent.Log(ctx, &auditv1.LogRequest{Record: &auditv1.AuditRecord{
		What: "wire_transfer", Resource: `Account::"acme"`, Outcome: auditv1.Outcome_OUTCOME_SUCCESS,
		Context: map[string]string{"amount": "4200 EUR"}}})
	if err != nil {
		log.Fatal(err)
	}
	// Its inclusion proof, the leaf, and the signed checkpoint it leads to.
	p, err := agent.GetProof(ctx, &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: logged.GetIndex(), WithLeaf: true})
	if err != nil {
		log.Fatal(err)
	}
	keys, err := agent.GetVerifierKey(ctx, &auditv1.GetVerifierKeyRequest{})
	if err != nil {
		log.Fatal(err)
	}

	// Client side: golang.org/x/mod's note verifier checks the checkpoint's
	// standard Ed25519 line, transparency-dev/merkle the RFC 6962 proof.
	verifier, _ := note.NewVerifier(keys.GetEd25519Key())
	cp, err := note.Open(p.GetProof().GetCheckpoint(), note.VerifierList(verifier))
	if err != nil {
		log.Fatal(err)
	}
	lines := strings.Split(cp.Text, "\n") // origin, size, base64 root
	size, _ := strconv.ParseUint(lines[1], 10, 64)
	root, _ := base64.StdEncoding.DecodeString(lines[2])
	leaf := p.GetProof().GetLeaf()
	err = proof.VerifyInclusion(rfc6962.DefaultHasher, logged.GetIndex(), size, rfc6962.DefaultHasher.HashLeaf(leaf), p.GetProof().GetHashes(), root)
	r, _ := audit.DecodeLeaf(leaf)
	fmt.Println("proof of", r.Who, r.What, "verifies:", err == nil)

	// Offline, on the stopped node's data directory.
	if err := n.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	trusted, _ := audit.ParseVerifier(keys.GetEd25519Key(), keys.GetHybridKey())
	rep, err := audit.VerifyStore(ctx, store, trusted)
	fmt.Println(rep.Entries, "entries verify:", err == nil)
	// Output:
	// proof of payments wire_transfer verifies: true
	// 3 entries verify: true
}
