package node

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/creto-systems/creto/abi"
	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/services/audit"
)

func auditClient(conn grpc.ClientConnInterface) auditv1.AuditServiceClient {
	return auditv1.NewAuditServiceClient(conn)
}

// records flushes the node's Logger and returns the records an operator
// finds with q.
func (tn *testNode) records(q *auditv1.QueryRequest) []*auditv1.AuditRecord {
	tn.t.Helper()
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	if err := tn.auditLogger.Flush(ctx); err != nil {
		tn.t.Fatal(err)
	}
	q.PageSize = 1000
	resp, err := auditClient(tn.operator()).Query(bg, q)
	if err != nil {
		tn.t.Fatal(err)
	}
	return resp.GetRecords()
}

// logRecord is a record an agent logs about itself.
func logRecord(what string) *auditv1.LogRequest {
	return &auditv1.LogRequest{Record: &auditv1.AuditRecord{What: what, Resource: `Invoice::"7"`, Outcome: auditv1.Outcome_OUTCOME_SUCCESS}}
}

// An agent logs a record, finds it, gets its inclusion proof and checks
// it on its own side with standard tools: the Ed25519 line of the
// checkpoint with x/mod's note verifier and the proof with
// transparency-dev/merkle, against the checkpoint GetCheckpoint serves and
// the key GetVerifierKey gives.
func TestAuditLogProveAndVerifyOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	c := auditClient(tn.agent("planner"))
	logged, err := c.Log(bg, logRecord("approve"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.Query(bg, &auditv1.QueryRequest{What: "approve"})
	if err != nil || len(q.GetRecords()) != 1 {
		t.Fatalf("query: %v %v", q, err)
	}
	rec := q.GetRecords()[0]
	if rec.GetIndex() != logged.GetIndex() || rec.GetWho().GetId() != "planner" || rec.GetSource() != "api" {
		t.Fatalf("record %v", rec)
	}
	// A proof brings the latest checkpoint up to the record; proving
	// against exactly the checkpoint served comes next.
	if _, err := c.GetProof(bg, &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: rec.GetIndex()}); err != nil {
		t.Fatal(err)
	}
	cp, err := c.GetCheckpoint(bg, &auditv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.GetVerifierKey(bg, &auditv1.GetVerifierKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.GetProof(bg, &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: rec.GetIndex(),
		WithLeaf: true, TreeSize: cp.GetCheckpoint().GetSize()})
	if err != nil {
		t.Fatal(err)
	}

	std, err := note.NewVerifier(keys.GetEd25519Key())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(cp.GetSignedNote()), note.VerifierList(std))
	if err != nil {
		t.Fatalf("the standard verifier refuses the checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	size, err1 := strconv.ParseUint(lines[1], 10, 64)
	root, err2 := base64.StdEncoding.DecodeString(lines[2])
	if lines[0] != keys.GetOrigin() || err1 != nil || err2 != nil || size != cp.GetCheckpoint().GetSize() || string(root) != string(cp.GetCheckpoint().GetRootHash()) {
		t.Fatalf("checkpoint text %q", n.Text)
	}
	leaf := p.GetProof().GetLeaf()
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, rec.GetIndex(), size, rfc6962.DefaultHasher.HashLeaf(leaf), p.GetProof().GetHashes(), root); err != nil {
		t.Fatalf("transparency-dev/merkle refuses the proof: %v", err)
	}
	// The leaf proven is the record queried.
	r, err := audit.DecodeLeaf(leaf)
	if err != nil || r.Index != rec.GetIndex() || r.Who != "planner" || r.What != "approve" || !r.LoggedAt.Equal(rec.GetLoggedAt().AsTime()) {
		t.Fatalf("leaf %+v %v", r, err)
	}
	// The hybrid line too, with this package's verifier.
	v, err := audit.ParseVerifier(keys.GetEd25519Key(), keys.GetHybridKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open([]byte(cp.GetSignedNote())); err != nil {
		t.Fatal(err)
	}
	// And the service agrees, given the record as Query returned it.
	if ok, err := c.Verify(bg, &auditv1.VerifyRequest{Record: rec, Proof: p.GetProof()}); err != nil || !ok.GetValid() {
		t.Fatalf("Verify: %v %v", ok, err)
	}
}

// An agent signs a record with its NHI key (NhiService.Sign) before
// logging it; the log checks the signature under the agent's keys.
func TestAuditSignedRecordsOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	conn := tn.agent("planner")
	r := audit.Record{Source: "planner-app", Who: "planner", What: "approve", Resource: `Invoice::"7"`, Outcome: audit.Success,
		Timestamp: time.Now().Add(-time.Second).UTC()}
	payload, err := r.SigningPayload()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := nhiv1.NewNhiServiceClient(conn).Sign(bg, &nhiv1.SignRequest{Data: payload})
	if err != nil {
		t.Fatal(err)
	}
	req := &auditv1.LogRequest{Record: &auditv1.AuditRecord{Source: r.Source, What: r.What, Resource: r.Resource,
		Outcome: auditv1.Outcome_OUTCOME_SUCCESS, Timestamp: timestamppb.New(r.Timestamp), Signature: signed.GetSignature()}}
	c := auditClient(conn)
	if _, err := c.Log(bg, req); err != nil {
		t.Fatal(err)
	}
	req.Record.Resource = `Invoice::"8"` // not what was signed
	_, err = c.Log(bg, req)
	wantReason(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	got, err := c.Query(bg, &auditv1.QueryRequest{What: "approve"})
	if err != nil || len(got.GetRecords()) != 1 || len(got.GetRecords()[0].GetSignature().GetMlDsaSignature()) == 0 {
		t.Fatalf("signed records: %v %v", got, err)
	}
}

// An agent logs and reads only its own records; another's need the
// owner's "audit:read" delegation; everyone's are for operators.
func TestAuditScopesAgentsOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	planner, mailer := auditClient(tn.agent("planner")), auditClient(tn.agent("mailer"))
	if _, err := planner.Log(bg, logRecord("plan")); err != nil {
		t.Fatal(err)
	}
	if _, err := mailer.Log(bg, logRecord("send")); err != nil {
		t.Fatal(err)
	}
	size := tn.audit.Size()
	_, err := mailer.Query(bg, &auditv1.QueryRequest{Who: "planner"})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	forged := logRecord("plan")
	forged.Record.Who = agentRef("planner")
	_, err = mailer.Log(bg, forged)
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	_, err = mailer.LogBatch(bg, &auditv1.LogBatchRequest{Records: []*auditv1.AuditRecord{logRecord("send").Record, forged.Record}})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	if tn.audit.Size() != size {
		t.Fatal("a refused record was appended")
	}
	own, err := mailer.Query(bg, &auditv1.QueryRequest{})
	if err != nil || len(own.GetRecords()) == 0 {
		t.Fatalf("own records: %v %v", own, err)
	}
	for _, r := range own.GetRecords() {
		if r.GetWho().GetId() != "mailer" {
			t.Fatalf("mailer read %v", r)
		}
	}
	plan := tn.records(&auditv1.QueryRequest{What: "plan"})[0]
	_, err = mailer.GetProof(bg, &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: plan.GetIndex(), WithLeaf: true})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	if _, err := mailer.GetProof(bg, &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: plan.GetIndex()}); err != nil {
		t.Fatalf("a proof without the leaf is hashes: %v", err)
	}

	// planner opens its records to mailer.
	if _, err := tn.nhi.CreateDelegation(bg, "planner", "mailer", []string{"audit:read"}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := mailer.Query(bg, &auditv1.QueryRequest{Who: "planner", What: "plan"})
	if err != nil || len(got.GetRecords()) != 1 {
		t.Fatalf("with the delegation: %v %v", got, err)
	}
	_, err = mailer.Log(bg, forged)
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED") // reading is not writing

	all := tn.records(&auditv1.QueryRequest{Source: "api"})
	if len(all) != 2 {
		t.Fatalf("the operator sees %d client records, want 2", len(all))
	}
}

// By default a denial is a record, with the policy that decided, and a
// plain allow is not; "all" records allows too, "none" nothing.
func TestAuditRecordsDecisions(t *testing.T) {
	const noDelete = `@id("no-delete") @reason("deletes need approval") forbid (principal, action == Action::"delete", resource);`
	for _, mode := range []string{"", DecisionsAll, DecisionsNone} {
		t.Run("decisions="+mode, func(t *testing.T) {
			tn := startNode(t, "", func(c *Config) { c.Audit.Decisions = mode })
			for _, p := range []string{readPolicy, noDelete} {
				if _, err := tn.authz.CreatePolicy(bg, "", p); err != nil {
					t.Fatal(err)
				}
			}
			c := authzv1.NewAuthorizationServiceClient(tn.agent("reader"))
			check(t, c, "reader", "read", `Document::"q3"`)
			check(t, c, "reader", "delete", `Document::"q3"`)
			rs := tn.records(&auditv1.QueryRequest{Source: "authz"})
			var whats []string
			for _, r := range rs {
				whats = append(whats, r.GetWhat())
			}
			want := map[string]string{"": "delete", DecisionsAll: "read,delete", DecisionsNone: ""}[mode]
			if strings.Join(whats, ",") != want {
				t.Fatalf("recorded %v, want %s", whats, want)
			}
			if mode == DecisionsNone {
				return
			}
			d := rs[len(rs)-1]
			if d.GetWho().GetId() != "reader" || d.GetPolicyId() != "no-delete" || d.GetOutcome() != auditv1.Outcome_OUTCOME_DENIED ||
				d.GetWhy() != "deletes need approval" || d.GetResource() != `Document::"q3"` {
				t.Fatalf("denial %v", d)
			}
		})
	}
	if _, err := LoadConfig("", []string{"CRETO_AUDIT_DECISIONS=some"}); err != nil {
		t.Fatal(err) // read as given; refused when the node opens
	}
	_, err := Open(bg, Config{Server: ServerConfig{DataDir: t.TempDir()}, Audit: AuditConfig{Decisions: "some"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "audit.decisions") {
		t.Fatalf("an unknown decisions mode: %v", err)
	}
}

// Every vault access is a record in the audit log before it takes effect,
// GetAccessLog reads them from there, and a log that cannot record makes
// the vault refuse.
func TestAuditRecordsVaultAccessesAndTheVaultFailsClosed(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir, func(c *Config) { c.Server.ShutdownTimeout = time.Second })
	ref := secretRef("agents/runtime/keys", "API_KEY")
	createSecret(t, tn.agent("runtime"), ref, "s3cr3t-value")
	runtime := vaultv1.NewVaultServiceClient(tn.agent("runtime"))
	if _, err := runtime.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref}); err != nil {
		t.Fatal(err)
	}
	_, err := vaultv1.NewVaultServiceClient(tn.agent("intruder")).GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")

	// Recorded synchronously: no flush is needed to find them.
	q, err := auditClient(tn.operator()).Query(bg, &auditv1.QueryRequest{Resource: `Secret::"agents/runtime/keys/API_KEY"`})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range q.GetRecords() {
		got = append(got, r.GetWho().GetId()+" "+r.GetWhat()+" "+r.GetOutcome().String()+" "+r.GetWhy())
		if r.GetSource() != "vault" || r.GetContext()["path"] != "agents/runtime/keys" || r.GetContext()["name"] != "API_KEY" {
			t.Errorf("record %v", r)
		}
	}
	want := "runtime vault.create OUTCOME_SUCCESS ,runtime vault.get OUTCOME_SUCCESS ,intruder vault.get OUTCOME_DENIED access_denied"
	if strings.Join(got, ",") != want {
		t.Fatalf("records:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	accessLog, err := runtime.GetAccessLog(bg, &vaultv1.GetAccessLogRequest{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	if evs := accessLog.GetEvents(); len(evs) != 3 || evs[1].GetOperation() != "get" || evs[1].GetVersion() != "1" ||
		evs[2].GetAgent().GetId() != "intruder" || evs[2].GetOutcome() != vaultv1.AccessOutcome_ACCESS_OUTCOME_DENIED {
		t.Fatalf("the access log from the audit log: %v", evs)
	}
	everything := tn.records(&auditv1.QueryRequest{})
	for _, r := range everything {
		if strings.Contains(r.String(), "s3cr3t-value") {
			t.Fatalf("a secret value in the audit log: %v", r)
		}
	}

	// The log fails: the vault serves nothing it cannot record.
	if err := tn.audit.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = runtime.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	wantReason(t, err, codes.Unavailable, "AUDIT_FAILED")
	_, err = runtime.CreateSecret(bg, &vaultv1.CreateSecretRequest{Reference: secretRef("agents/runtime/keys", "OTHER"), Value: []byte("v"), Metadata: generic})
	wantReason(t, err, codes.Unavailable, "AUDIT_FAILED")
	// An identity change now cannot reach the log: the Logger spools it,
	// and the audit service's health says so.
	tn.agentToken("late")
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := healthpb.NewHealthClient(tn.anonymous()).Check(bg, &healthpb.HealthCheckRequest{Service: auditServiceName})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit service still reports %v with its log down", resp.GetStatus())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Shutting down reports the log closed under it.
	err = tn.Shutdown(bg)
	tn.Node = nil
	if !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("shutdown: %v", err)
	}
	// After a restart: the change the log could not record was never
	// made, and the spooled identity change is in the log.
	tn = startNode(t, dir, nil)
	_, err = vaultv1.NewVaultServiceClient(tn.agent("runtime")).GetSecretMetadata(bg, &vaultv1.GetSecretMetadataRequest{Reference: secretRef("agents/runtime/keys", "OTHER")})
	wantReason(t, err, codes.NotFound, "NOT_FOUND")
	if rs := tn.records(&auditv1.QueryRequest{What: "nhi.agent_registered", Resource: `Agent::"late"`}); len(rs) != 1 {
		t.Fatalf("the spooled registration: %v", rs)
	}
}

// Identity changes made over gRPC are attributed to the operator who made
// them; a call the meta-policies refuse is a record attributed to the
// caller.
func TestAuditRecordsIdentityChangesAndRefusedCalls(t *testing.T) {
	tn := startNode(t, "", nil)
	if _, err := nhiv1.NewNhiServiceClient(tn.operator()).RegisterAgent(bg, registerRequest("payments-bot")); err != nil {
		t.Fatal(err)
	}
	reg := tn.records(&auditv1.QueryRequest{What: "nhi.agent_registered", Resource: `Agent::"payments-bot"`})
	if len(reg) != 1 || reg[0].GetWho().GetId() != `Operator::"`+pki.DefaultOperator+`"` || reg[0].GetSource() != "nhi" {
		t.Fatalf("registration: %v", reg)
	}

	_, err := nhiv1.NewNhiServiceClient(tn.agent("mallory")).RegisterAgent(bg, registerRequest("mallory-2"))
	wantCode(t, err, codes.PermissionDenied)
	// The agent finds its own refusal.
	q, err := auditClient(tn.agent("mallory")).Query(bg, &auditv1.QueryRequest{What: "node.call_denied"})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.GetRecords()) != 1 {
		// The Logger delivers asynchronously.
		q.Records = tn.records(&auditv1.QueryRequest{What: "node.call_denied"})
	}
	if len(q.GetRecords()) != 1 {
		t.Fatalf("refusals: %v", q.GetRecords())
	}
	r := q.GetRecords()[0]
	if r.GetWho().GetId() != "mallory" || r.GetResource() != `Method::"/creto.nhi.v1.NhiService/RegisterAgent"` ||
		r.GetOutcome() != auditv1.Outcome_OUTCOME_DENIED || r.GetSource() != "node" || r.GetContext()["caller_kind"] != "Agent" {
		t.Fatalf("refusal %v", r)
	}
}

// An extension granted "audit" reports through creto:audit/v1 in the name
// of the request's principal.
func TestAuditExtensionEmitsThroughTheNode(t *testing.T) {
	tn := startNode(t, "", nil)
	wasm, err := os.ReadFile(filepath.Join("..", "hosts", "testdata", "audit_emit.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest([]byte(`{"name": "flagger", "capabilities": ["audit"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if wasm, err = abi.WriteManifest(wasm, m); err != nil {
		t.Fatal(err)
	}
	az := authzv1.NewAuthorizationServiceClient(tn.operator())
	if _, err := az.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: wasm, Grants: []string{"audit"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := az.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Id: "all", Text: `permit (principal, action, resource);`}); err != nil {
		t.Fatal(err)
	}
	resp, err := az.Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "payments-bot"}, Action: "pay", Resource: `Invoice::"inv-9"`, TraceId: "t-1"})
	if err != nil || resp.GetDecision().GetDeny().GetReason() != "0" {
		t.Fatalf("check: %v %v", resp, err)
	}
	rs := tn.records(&auditv1.QueryRequest{Source: "ext:flagger"})
	if len(rs) != 2 || rs[0].GetWho().GetId() != "extension:flagger" || rs[1].GetWhat() != "payment.flagged" ||
		rs[1].GetWho().GetId() != "payments-bot" || rs[1].GetResource() != "inv-9" || rs[1].GetTraceId() != "t-1" {
		t.Fatalf("extension records: %v", rs)
	}
}

// Bad input is INVALID_ARGUMENT and appends nothing.
func TestAuditRefusesBadInputOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	c := auditClient(tn.agent("planner"))
	tn.records(&auditv1.QueryRequest{}) // the registration's record is in
	size := tn.audit.Size()
	for name, req := range map[string]*auditv1.LogRequest{
		"no record":    {},
		"no outcome":   {Record: &auditv1.AuditRecord{What: "x"}},
		"no what":      {Record: &auditv1.AuditRecord{Outcome: auditv1.Outcome_OUTCOME_SUCCESS}},
		"index":        {Record: &auditv1.AuditRecord{What: "x", Outcome: auditv1.Outcome_OUTCOME_SUCCESS, Index: 3}},
		"vault source": {Record: &auditv1.AuditRecord{What: "vault.get", Source: "vault", Outcome: auditv1.Outcome_OUTCOME_SUCCESS}},
		"control":      {Record: &auditv1.AuditRecord{What: "x\ny", Outcome: auditv1.Outcome_OUTCOME_SUCCESS}},
	} {
		if _, err := c.Log(bg, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.Query(bg, &auditv1.QueryRequest{PageToken: "not-a-cursor"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("query: %v", err)
	}
	if _, err := c.GetProof(bg, &auditv1.GetProofRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("proof: %v", err)
	}
	if tn.audit.Size() != size {
		t.Fatalf("bad input appended %d records", tn.audit.Size()-size)
	}
}

// The audit service reports its health and the Logger's counters.
func TestAuditHealthAndMetrics(t *testing.T) {
	tn := startNode(t, "", nil)
	resp, err := healthpb.NewHealthClient(tn.anonymous()).Check(bg, &healthpb.HealthCheckRequest{Service: auditServiceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
	tn.agentToken("planner") // a registration: one critical event
	tn.records(&auditv1.QueryRequest{})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(t, tn.tlsDir(), "", "")}}
	r, err := client.Get("https://" + strings.Replace(tn.HTTPAddr().String(), "127.0.0.1", "localhost", 1) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	for _, want := range []string{"audit_events_dropped_total 0", "audit_events_delivered_total 2", "audit_log_unavailable 0", "audit_log_size 2",
		`audit_requests_total{code="OK",method="Query",status="ok"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// [audit] and its nested [audit.logger] come from the file and the
// environment; typos and impossible settings are refused at start.
func TestAuditConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creto.toml")
	os.WriteFile(path, []byte("[audit]\ndecisions = \"all\"\ncheckpoint_interval = \"250ms\"\n[audit.logger]\nbuffer_size = 64\n"), 0o600)
	c, err := LoadConfig(path, []string{"CRETO_AUDIT_LOGGER_BATCH_SIZE=32", "CRETO_AUDIT_ORIGIN=audit.example/prod"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = c.withDefaults(); err != nil {
		t.Fatal(err)
	}
	a := c.Audit
	if a.Decisions != DecisionsAll || a.CheckpointInterval != 250*time.Millisecond || a.Logger.BufferSize != 64 || a.Logger.BatchSize != 32 ||
		a.Origin != "audit.example/prod" || a.Logger.SpoolPath != filepath.Join(DefaultDataDir, "audit.spool") {
		t.Fatalf("audit config %+v", a)
	}
	os.WriteFile(path, []byte("[audit.logger]\nbufer_size = 64\n"), 0o600)
	if _, err := LoadConfig(path, nil); err == nil || !strings.Contains(err.Error(), "audit.logger.bufer_size") {
		t.Fatalf("a typo: %v", err)
	}
	for name, bad := range map[string]AuditConfig{
		"batch over max_batch": {Config: audit.Config{MaxBatch: 10}, Logger: audit.LoggerConfig{BatchSize: 11}},
		"decisions":            {Decisions: "denials"},
	} {
		if _, err := (Config{Audit: bad}).withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The services' own checks run when the node opens, before it serves.
	_, err = Open(bg, Config{Server: ServerConfig{DataDir: t.TempDir()}, Audit: AuditConfig{Config: audit.Config{CheckpointInterval: time.Microsecond}}}, nil)
	if !errors.Is(err, audit.ErrInvalidArgument) {
		t.Fatalf("a checkpoint interval under a millisecond: %v", err)
	}
}
