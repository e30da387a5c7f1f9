package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/creto-systems/creto/client"
	"github.com/creto-systems/creto/node"
)

// An agent platform builds every client from one TOML file and asks a
// node — here one started in-process with the example policies, as `make
// run` starts it — for decisions, an approver's context, a secret, an
// object's storage, an audit record and a timestamp.
func Example() {
	ctx := context.Background()
	addr, tlsDir, stop := exampleNode()
	defer stop()

	// The file names the node once; each section may override it and
	// carries the seed's timeouts, retries, caches and circuit breakers.
	cfg, err := client.ParseConfig(fmt.Appendf(nil, `
endpoint = %q
tls_ca   = %q
tls_cert = %q
tls_key  = %q

[authz]
timeout_ms = 250   # the seed's 10 ms is for a node next door, not a busy test machine

[memory]
timeout_ms = 2000
`, addr, filepath.Join(tlsDir, "ca.crt"), filepath.Join(tlsDir, "admin.crt"), filepath.Join(tlsDir, "admin.key")))
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(cfg, client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}

	// The node knows an agent once NHI does: onboard the example's.
	for _, id := range []string{"ci-bot", "ledger-bot", "docs-bot"} {
		_, err := c.NHI.RegisterAgent(ctx, client.Agent{ID: id, Type: client.AgentService, OwnerID: "platform"})
		if err != nil && !errors.Is(err, client.ErrAlreadyExists) {
			log.Fatal(err)
		}
	}

	for _, req := range []client.CheckRequest{
		{Principal: client.Principal{ID: "ci-bot"}, Action: "read_file", Resource: `File::"engineering/design.md"`},
		{Principal: client.Principal{ID: "ledger-bot"}, Action: "transfer_funds", Resource: `Account::"ops-budget"`,
			Context: map[string]any{"amount": 25000}},
		{Principal: client.Principal{ID: "docs-bot"}, Action: "network_egress", Resource: `Host::"pastebin.com"`,
			Context: map[string]any{"port": 443}},
	} {
		d, err := c.Authz.Check(ctx, req) // on any error, d is a fail-secure Deny
		if err != nil {
			log.Fatal(err)
		}
		switch d.Kind {
		case client.RequiresOversight:
			fmt.Printf("%s %s: %s by %v\n", req.Principal.ID, req.Action, d.Oversight.Requirement, d.Oversight.Approvers)
		case client.Deny:
			fmt.Printf("%s %s: deny (%s)\n", req.Principal.ID, req.Action, d.Reason)
		default:
			fmt.Printf("%s %s: %s\n", req.Principal.ID, req.Action, d.Kind)
		}
	}

	// The transfer needs two approvers: show them the agent's reasoning.
	if _, err := c.Memory.Store(ctx, client.StoreRequest{Agent: "ledger-bot", Type: client.Reasoning,
		Content: "Quarterly GPU reservation: transfer 25000 from ops-budget to the cloud vendor", Metadata: map[string]string{"action_id": "tx-7"}}); err != nil {
		log.Fatal(err)
	}
	oc, err := c.Memory.OversightContext(ctx, client.OversightRequest{Agent: "ledger-bot", Action: "transfer 25000 from ops-budget", ActionID: "tx-7"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("approvers see: %q (degraded: %v)\n", oc.Reasoning, oc.Degraded != nil)

	// A secret, read as the agent that owns it; it prints redacted.
	ref := client.SecretRef{Path: "agents/ledger-bot/bank", Name: "API_TOKEN"}
	if _, err := c.Vault.CreateSecret(ctx, client.CreateSecretRequest{Requester: "ledger-bot", Ref: ref, Value: client.NewSecretValue([]byte("tok-123")),
		Metadata: client.SecretMetadata{Type: client.Token}}); err != nil {
		log.Fatal(err)
	}
	s, err := c.Vault.GetSecret(ctx, "ledger-bot", ref, "")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Destroy()
	fmt.Printf("secret %s version %s: %v (%d bytes)\n", ref.Name, s.Version, s.Value, len(s.Value.Expose()))

	// The transfer's record: an object encrypted for its owner, retained
	// for compliance; an audit event, emitted without waiting for the log;
	// and the cluster's timestamp for it.
	obj, err := c.Storage.Store(ctx, client.StoreObjectRequest{Requester: "ledger-bot", Ref: client.StorageRef{Bucket: "ledgers", Key: "tx-7.json"},
		Classification: client.Compliance, ContentType: "application/json"}, []byte(`{"amount": 25000}`))
	if err != nil {
		log.Fatal(err)
	}
	back, err := c.Storage.Retrieve(ctx, client.ObjectRequest{Requester: "ledger-bot", Ref: obj.Ref})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored %s (%d bytes, retained: %v)\n", back.Data, obj.Size, !obj.RetainUntil.IsZero())
	if err := c.Audit.Emit(ctx, client.AuditEvent{Record: client.AuditRecord{Who: "ledger-bot", What: "transfer_funds",
		Resource: `Account::"ops-budget"`, Outcome: client.OutcomeSuccess, Source: "platform"}}); err != nil {
		log.Fatal(err)
	}
	if err := c.Audit.Flush(ctx); err != nil { // Emit returned at once; wait for the log here
		log.Fatal(err)
	}
	page, err := c.Audit.Query(ctx, client.AuditQuery{Who: "ledger-bot", Source: "platform"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("audited:", page.Records[0].Who, page.Records[0].What)
	ts, err := c.Consensus.GetTimestamp(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("timestamp from consensus:", ts.Consensus)

	fmt.Println("platform:", c.Health(ctx).Status)
	// Output:
	// ci-bot read_file: allow
	// ledger-bot transfer_funds: two-person by [cfo controller]
	// docs-bot network_egress: deny (the destination host is not on the egress allowlist)
	// approvers see: "Quarterly GPU reservation: transfer 25000 from ops-budget to the cloud vendor" (degraded: false)
	// secret API_TOKEN version 1: [REDACTED] (7 bytes)
	// stored {"amount": 25000} (17 bytes, retained: true)
	// audited: ledger-bot transfer_funds
	// timestamp from consensus: true
	// platform: healthy
}

// exampleNode starts a node with the example policies, as `make run` does,
// and returns its address, its development certificates and how to stop
// it.
func exampleNode() (addr, tlsDir string, stop func()) {
	dir, err := os.MkdirTemp("", "creto-client")
	if err != nil {
		log.Fatal(err)
	}
	n, err := node.Open(context.Background(), node.Config{
		Server: node.ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		Authz:  node.AuthzConfig{ImportPolicies: "../examples/policies", Entities: "../examples/entities.json", Schema: "../examples/schema.cedarschema"},
		// Raft on a free port, electing itself at once.
		Consensus: testConsensus(""),
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		log.Fatal(err)
	}
	if err := n.Start(); err != nil {
		log.Fatal(err)
	}
	return n.GRPCAddr().String(), filepath.Join(dir, "tls"), func() {
		n.Shutdown(context.Background())
		os.RemoveAll(dir)
	}
}
