package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/nhi"
)

// Example logs a record synchronously and a vault access through the
// asynchronous Logger, proves a record is in the log, verifies the proof
// with nothing but the log's public keys, shows a standard signed-note
// verifier accepting the checkpoint, and verifies the whole log offline.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	store, _ := kv.Open(filepath.Join(dir, "kv")) // the node's one store
	defer store.Close()
	sealer, _ := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	defer sealer.Close()

	log, _ := audit.Open(ctx, store, sealer, audit.Config{Origin: "audit.example.com/prod"})

	// An agent logs its own action; Log returns once it is fsync'd.
	resp, _ := log.Log(ctx, "payments", audit.LogRequest{Record: audit.Record{
		Who: "payments", What: "wire_transfer", Resource: `Account::"acme"`, Outcome: audit.Success,
		Context: map[string]string{"amount": "4200 EUR"},
	}})
	fmt.Println("logged at index", resp.Index)

	// The engine and the services emit through a Logger, which never
	// blocks them; critical events are never dropped.
	logger, _ := audit.NewLogger(log, audit.LoggerConfig{SpoolPath: filepath.Join(dir, "audit.spool")})
	logger.Emit(ctx, audit.Event{Class: audit.Critical, Record: audit.Record{
		Source: "vault", Who: "payments", What: "vault.secret_read", Resource: `Secret::"acme-api-key"`,
	}})
	logger.Close(ctx) // delivers what is buffered

	// Prove record 1 is in the log; check the proof with the public keys
	// only, as a client would.
	proof, _ := log.GetProof(ctx, "payments", audit.GetProofRequest{Kind: audit.Inclusion, Index: 1, WithLeaf: true})
	v, _ := audit.ParseVerifier(log.Verifier().Ed25519Key(), log.Verifier().HybridKey())
	cp, err := audit.VerifyProof(v, audit.VerifyRequest{Proof: proof})
	fmt.Println("record 1 is in the signed tree of size", cp.Size, "- error:", err)

	// The checkpoint's Ed25519 line is standard C2SP: x/mod's verifier
	// accepts it (and ignores the hybrid line, which ours also requires).
	std, _ := note.NewVerifier(log.Verifier().Ed25519Key())
	_, err = note.Open(proof.Checkpoint, note.VerifierList(std))
	fmt.Println("golang.org/x/mod/sumdb/note accepts the checkpoint:", err == nil)

	// Offline, on the stopped node's store: every record, hash and
	// checkpoint.
	log.Close()
	rep, err := audit.VerifyStore(ctx, store, v)
	fmt.Println(rep.Entries, "entries and", rep.Checkpoints, "checkpoints verify - error:", err)
	// Output:
	// logged at index 0
	// record 1 is in the signed tree of size 2 - error: <nil>
	// golang.org/x/mod/sumdb/note accepts the checkpoint: true
	// 2 entries and 2 checkpoints verify - error: <nil>
}

// vaultAudit is what the vault's integrator writes: vault accesses as
// critical events, never dropped. The host fills in who and when; the
// secret's value never goes near the record.
type vaultAudit struct{ l *audit.Logger }

func (a vaultAudit) SecretAccessed(ctx context.Context, agent, secretID, op string, err error) {
	r := audit.Record{Source: "vault", Who: agent, What: "vault." + op, Resource: `Secret::"` + secretID + `"`, Outcome: audit.Success}
	if err != nil {
		r.Outcome, r.Why = audit.Denied, err.Error()
	}
	a.l.Emit(ctx, audit.Event{Class: audit.Critical, Record: r})
}

// ExampleLogger_Emit is the adapter a service such as the vault needs: a
// few lines that build a record and emit it as critical.
func ExampleLogger_Emit() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	store, _ := kv.Open(filepath.Join(dir, "kv"))
	defer store.Close()
	sealer, _ := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	defer sealer.Close()
	log, _ := audit.Open(ctx, store, sealer, audit.Config{})
	defer log.Close()
	logger, _ := audit.NewLogger(log, audit.LoggerConfig{SpoolPath: filepath.Join(dir, "audit.spool")})

	vault := vaultAudit{logger}
	vault.SecretAccessed(ctx, "payments", "acme-api-key", "secret_read", nil)
	vault.SecretAccessed(ctx, "intruder", "acme-api-key", "secret_read", fmt.Errorf("no delegation"))
	logger.Close(ctx)

	res, _ := log.Query(ctx, "intruder", audit.QueryRequest{Who: "intruder"})
	r := res.Records[0]
	fmt.Println(r.Index, r.Who, r.What, r.Resource, r.Outcome, r.Why)
	// Output:
	// 1 intruder vault.secret_read Secret::"acme-api-key" denied no delegation
}
