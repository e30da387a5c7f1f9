package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/services/nhi"
)

// operatorsAudit is the node's rule: operators are auditors.
var operatorsAudit = AuthorizerFunc(func(ctx context.Context, _, _ string, _ Access) error {
	if id, ok := caller.From(ctx); ok && id.Kind == caller.Operator {
		return nil
	}
	return ErrAccessDenied
})

// serverEnv is the adapter over a real log whose records' signatures are
// checked by a real NHI service.
type serverEnv struct {
	*logEnv
	srv *Server
	ids *nhi.Service
}

func newServerEnv(t *testing.T) *serverEnv {
	t.Helper()
	st, _ := testStore(t)
	sealer := testSealer(t)
	ids, err := nhi.New(bg, st, sealer, nhi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ids.Close() })
	e := &logEnv{t: t, store: st, sealer: sealer, cfg: Config{Authorizer: operatorsAudit, Signatures: ids}, clock: newClock(), realTime: true}
	e.reopen()
	return &serverEnv{logEnv: e, srv: NewServer(e.svc, nil), ids: ids}
}

var bg = context.Background()

func as(kind caller.Kind, id string) context.Context {
	return caller.With(bg, caller.Identity{Kind: kind, ID: id})
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want %v", err, code)
	}
}

func TestCallerID(t *testing.T) {
	if got := CallerID(caller.Identity{Kind: caller.Agent, ID: "planner"}); got != "planner" {
		t.Error(got)
	}
	if got := CallerID(caller.Identity{Kind: caller.Operator, ID: "planner"}); got != `Operator::"planner"` {
		t.Error(got)
	}
}

// Every wire outcome and proof kind maps to the service's and back; the
// unspecified ones are refused.
func TestServerEnumsCoverTheService(t *testing.T) {
	for n := range auditv1.Outcome_name {
		p := auditv1.Outcome(n)
		o, err := outcomeFrom(p)
		if p == auditv1.Outcome_OUTCOME_UNSPECIFIED {
			if err == nil {
				t.Error("an unspecified outcome converted")
			}
			continue
		}
		if err != nil || recordProto(&Record{Outcome: o}).GetOutcome() != p || o.String() != map[auditv1.Outcome]string{
			auditv1.Outcome_OUTCOME_SUCCESS: "success", auditv1.Outcome_OUTCOME_FAILURE: "failure",
			auditv1.Outcome_OUTCOME_DENIED: "denied", auditv1.Outcome_OUTCOME_TIMEOUT: "timeout"}[p] {
			t.Errorf("%v: %v %v", p, o, err)
		}
	}
	if _, err := outcomeFrom(auditv1.Outcome(9)); !errors.Is(err, ErrInvalidArgument) {
		t.Error(err)
	}
	for n := range auditv1.ProofKind_name {
		p := auditv1.ProofKind(n)
		k, err := kindFrom(p)
		if p == auditv1.ProofKind_PROOF_KIND_UNSPECIFIED {
			if err == nil {
				t.Error("an unspecified kind converted")
			}
			continue
		}
		if err != nil || proofProto(&MerkleProof{Kind: k}).GetKind() != p {
			t.Errorf("%v: %v %v", p, k, err)
		}
	}
}

// An agent logs about itself by default, a signed record round-trips
// through the wire's HybridSignature, and the record Query returns
// verifies, as a record, against the proof GetProof returns.
func TestServerLogQueryProveVerify(t *testing.T) {
	e := newServerEnv(t)
	if _, err := e.ids.Register(bg, nhi.AgentIdentity{ID: "planner", Type: nhi.AgentTypeService, OwnerID: "ops"}); err != nil {
		t.Fatal(err)
	}
	planner := as(caller.Agent, "planner")
	signed := Record{Source: "payments-app", Who: "planner", What: "approve", Resource: `Invoice::"7"`, Outcome: Success,
		Timestamp: time.Now().Add(-time.Second).Round(0), Context: map[string]string{"amount": "42"}}
	payload, err := signed.SigningPayload()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.ids.Sign(bg, "planner", payload)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := nhi.SignatureProto(raw)
	if err != nil {
		t.Fatal(err)
	}
	logged, err := e.srv.Log(planner, &auditv1.LogRequest{Record: &auditv1.AuditRecord{
		Source: "payments-app", What: "approve", Resource: `Invoice::"7"`, Outcome: auditv1.Outcome_OUTCOME_SUCCESS,
		Timestamp: timestamppb.New(signed.Timestamp), Context: signed.Context, Signature: sig,
		DelegationChain: []*nhiv1.AgentIdentity{},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// A signature that is not planner's over this record is refused.
	_, err = e.srv.Log(planner, &auditv1.LogRequest{Record: &auditv1.AuditRecord{
		Source: "payments-app", What: "approve", Resource: `Invoice::"8"`, Outcome: auditv1.Outcome_OUTCOME_SUCCESS, Signature: sig}})
	wantCode(t, err, codes.InvalidArgument)

	q, err := e.srv.Query(planner, &auditv1.QueryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.GetRecords()) != 1 {
		t.Fatalf("%d records", len(q.GetRecords()))
	}
	got := q.GetRecords()[0]
	if got.GetIndex() != logged.GetIndex() || got.GetWho().GetId() != "planner" || got.GetSource() != "payments-app" ||
		got.GetSignature().GetAlgorithmId() == "" || got.GetContext()["amount"] != "42" {
		t.Fatalf("record %v", got)
	}
	p, err := e.srv.GetProof(planner, &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: got.GetIndex()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.srv.Verify(planner, &auditv1.VerifyRequest{Record: got, Proof: p.GetProof()})
	if err != nil || !v.GetValid() || v.GetCheckpoint().GetSize() != 1 {
		t.Fatalf("verify the queried record: %v %v", v, err)
	}
	// The same proof for an altered record: valid false, the entry named.
	got.What = "reject"
	v, err = e.srv.Verify(planner, &auditv1.VerifyRequest{Record: got, Proof: p.GetProof()})
	if err != nil || v.GetValid() || v.FailedEntry == nil || v.GetFailedEntry() != got.GetIndex() || v.GetReason() == "" {
		t.Fatalf("verify an altered record: %v %v", v, err)
	}
	cp, err := e.srv.GetCheckpoint(planner, &auditv1.GetCheckpointRequest{})
	if err != nil || cp.GetCheckpoint().GetSize() != 1 || string(p.GetProof().GetCheckpoint()) != cp.GetSignedNote() {
		t.Fatalf("checkpoint %v %v", cp, err)
	}
	keys, err := e.srv.GetVerifierKey(planner, &auditv1.GetVerifierKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := ParseVerifier(keys.GetEd25519Key(), keys.GetHybridKey())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := verifier.Open([]byte(cp.GetSignedNote())); err != nil || c.Size != 1 || c.Origin != keys.GetOrigin() {
		t.Fatalf("the verifier keys do not open the checkpoint: %v %v", c, err)
	}
}

// Agents log and read only their own records; operators log for anyone
// and read everyone's.
func TestServerScopesByCaller(t *testing.T) {
	e := newServerEnv(t)
	planner, mailer, op := as(caller.Agent, "planner"), as(caller.Agent, "mailer"), as(caller.Operator, "admin")
	rec := func(who string) *auditv1.AuditRecord {
		r := &auditv1.AuditRecord{What: "act", Outcome: auditv1.Outcome_OUTCOME_SUCCESS}
		if who != "" {
			r.Who = &nhiv1.AgentIdentity{Id: who}
		}
		return r
	}
	if _, err := e.srv.Log(planner, &auditv1.LogRequest{Record: rec("")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.srv.Log(planner, &auditv1.LogRequest{Record: rec("mailer")})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.srv.LogBatch(planner, &auditv1.LogBatchRequest{Records: []*auditv1.AuditRecord{rec(""), rec("mailer")}})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.srv.Log(op, &auditv1.LogRequest{Record: rec("mailer")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Log(op, &auditv1.LogRequest{Record: rec("")}); err != nil {
		t.Fatal(err)
	}
	if e.svc.Size() != 3 {
		t.Fatalf("size %d: a refused record was appended", e.svc.Size())
	}
	whos := func(ctx context.Context, who string) []string {
		t.Helper()
		q, err := e.srv.Query(ctx, &auditv1.QueryRequest{Who: who})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range q.GetRecords() {
			out = append(out, r.GetWho().GetId())
		}
		return out
	}
	if got := whos(mailer, ""); len(got) != 1 || got[0] != "mailer" {
		t.Errorf("mailer's own records: %v", got)
	}
	_, err = e.srv.Query(mailer, &auditv1.QueryRequest{Who: "planner"})
	wantCode(t, err, codes.PermissionDenied)
	if got := whos(op, ""); len(got) != 3 || got[2] != `Operator::"admin"` {
		t.Errorf("everyone's records: %v", got)
	}
	if q, err := e.srv.Query(op, &auditv1.QueryRequest{Source: SourceAPI}); err != nil || len(q.GetRecords()) != 3 {
		t.Errorf("a client's records without a source are from %q: %v %v", SourceAPI, q, err)
	}
	// An inclusion proof is hashes, open to anyone; with the leaf it is
	// the record, and needs read access.
	if _, err := e.srv.GetProof(mailer, &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: 0}); err != nil {
		t.Fatal(err)
	}
	_, err = e.srv.GetProof(mailer, &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: 0, WithLeaf: true})
	wantCode(t, err, codes.PermissionDenied)
	// No caller at all: the node's interceptor was bypassed.
	_, err = e.srv.GetCheckpoint(bg, &auditv1.GetCheckpointRequest{})
	wantCode(t, err, codes.Unauthenticated)
}

// Bad input of every kind is INVALID_ARGUMENT and appends nothing.
func TestServerRefusesBadInput(t *testing.T) {
	e := newServerEnv(t)
	op := as(caller.Operator, "admin")
	ok := func() *auditv1.AuditRecord {
		return &auditv1.AuditRecord{What: "act", Outcome: auditv1.Outcome_OUTCOME_SUCCESS}
	}
	with := func(f func(r *auditv1.AuditRecord)) *auditv1.AuditRecord { r := ok(); f(r); return r }
	for name, r := range map[string]*auditv1.AuditRecord{
		"no record":        nil,
		"no outcome":       with(func(r *auditv1.AuditRecord) { r.Outcome = 0 }),
		"unknown outcome":  with(func(r *auditv1.AuditRecord) { r.Outcome = 7 }),
		"no what":          with(func(r *auditv1.AuditRecord) { r.What = "" }),
		"index set":        with(func(r *auditv1.AuditRecord) { r.Index = 4 }),
		"logged_at set":    with(func(r *auditv1.AuditRecord) { r.LoggedAt = timestamppb.Now() }),
		"vault source":     with(func(r *auditv1.AuditRecord) { r.Source = "vault" }),
		"extension source": with(func(r *auditv1.AuditRecord) { r.Source = "ext:quota" }),
		"bad timestamp":    with(func(r *auditv1.AuditRecord) { r.Timestamp = &timestamppb.Timestamp{Nanos: -1} }),
		"future":           with(func(r *auditv1.AuditRecord) { r.Timestamp = timestamppb.New(time.Now().Add(time.Hour)) }),
		"newline in what":  with(func(r *auditv1.AuditRecord) { r.What = "a\nb" }),
		"empty link":       with(func(r *auditv1.AuditRecord) { r.DelegationChain = []*nhiv1.AgentIdentity{{}} }),
		"bad signature":    with(func(r *auditv1.AuditRecord) { r.Signature = &nhiv1.HybridSignature{Ed25519Signature: []byte{1}} }),
		"huge why":         with(func(r *auditv1.AuditRecord) { r.Why = string(make([]byte, 5000)) }),
	} {
		_, err := e.srv.Log(op, &auditv1.LogRequest{Record: r})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := e.srv.LogBatch(op, &auditv1.LogBatchRequest{Records: []*auditv1.AuditRecord{ok(), with(func(r *auditv1.AuditRecord) { r.What = "" })}})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.srv.LogBatch(op, &auditv1.LogBatchRequest{Records: make([]*auditv1.AuditRecord, 1001)})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.srv.LogBatch(op, &auditv1.LogBatchRequest{})
	wantCode(t, err, codes.InvalidArgument)
	if e.svc.Size() != 0 {
		t.Fatalf("bad input appended %d records", e.svc.Size())
	}

	for name, q := range map[string]*auditv1.QueryRequest{
		"outcome":    {Outcomes: []auditv1.Outcome{0}},
		"cursor":     {PageToken: "x"},
		"page size":  {PageSize: 5000},
		"negative":   {PageSize: -1},
		"time range": {Since: timestamppb.New(time.Unix(20, 0)), Until: timestamppb.New(time.Unix(10, 0))},
		"bad since":  {Since: &timestamppb.Timestamp{Seconds: -1 << 62}},
	} {
		if _, err := e.srv.Query(op, q); status.Code(err) != codes.InvalidArgument {
			t.Errorf("query %s: %v", name, err)
		}
	}
	for name, p := range map[string]*auditv1.GetProofRequest{
		"no kind": {},
		"index":   {Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: 3},
	} {
		if _, err := e.srv.GetProof(op, p); status.Code(err) != codes.InvalidArgument && status.Code(err) != codes.NotFound {
			t.Errorf("proof %s: %v", name, err)
		}
	}
	_, err = e.srv.GetCheckpoint(op, &auditv1.GetCheckpointRequest{})
	wantCode(t, err, codes.NotFound) // an empty log has signed nothing
	// Bytes that are not a checkpoint of this log do not verify: an
	// answer, not an error.
	v, err := e.srv.Verify(op, &auditv1.VerifyRequest{Proof: &auditv1.MerkleProof{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Checkpoint: []byte("x")}})
	if err != nil || v.GetValid() || v.GetReason() == "" {
		t.Errorf("verify not a note: %v %v", v, err)
	}
	for name, v := range map[string]*auditv1.VerifyRequest{
		"no proof":       {},
		"short hash":     {Proof: &auditv1.MerkleProof{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Hashes: [][]byte{{1}}}},
		"too many":       {Proof: &auditv1.MerkleProof{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Hashes: make([][]byte, 200)}},
		"record outcome": {Record: &auditv1.AuditRecord{}, Proof: &auditv1.MerkleProof{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION}},
	} {
		if _, err := e.srv.Verify(op, v); status.Code(err) != codes.InvalidArgument {
			t.Errorf("verify %s: %v", name, err)
		}
	}
}
