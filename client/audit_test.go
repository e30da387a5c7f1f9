package client_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Records logged, queried, proved and verified through the client.
func TestAudit(t *testing.T) {
	tn := startNode(t, "")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Audit

	at := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	one, err := c.Log(bg, client.AuditRecord{Who: "payments", What: "wire_transfer", Resource: `Account::"acme"`, Why: "invoice 42",
		Outcome: client.OutcomeSuccess, Timestamp: at, Source: "platform", Context: map[string]string{"amount": "4200 EUR"}})
	if err != nil || one.LoggedAt.IsZero() {
		t.Fatalf("log: %+v %v", one, err)
	}
	batch, err := c.LogBatch(bg, []client.AuditRecord{
		{Who: "payments", What: "wire_transfer", Outcome: client.OutcomeDenied, Source: "platform", DelegationChain: []string{`User::"alice"`}},
		{Who: "planner", What: "read_file", Outcome: client.OutcomeFailure, Source: "platform"},
	})
	if err != nil || batch.Count != 2 || batch.FirstIndex != one.Index+1 {
		t.Fatalf("batch after %d: %+v %v", one.Index, batch, err)
	}

	page, err := c.Query(bg, client.AuditQuery{Who: "payments", Source: "platform"})
	if err != nil || len(page.Records) != 2 {
		t.Fatalf("query: %+v %v", page, err)
	}
	r := page.Records[0]
	if r.Index != one.Index || r.What != "wire_transfer" || r.Resource != `Account::"acme"` || r.Why != "invoice 42" ||
		r.Outcome != client.OutcomeSuccess || !r.Timestamp.Equal(at) || r.Context["amount"] != "4200 EUR" || r.LoggedAt.IsZero() {
		t.Fatalf("record %+v", r)
	}
	if d := page.Records[1]; d.Outcome != client.OutcomeDenied || len(d.DelegationChain) != 1 || d.DelegationChain[0] != `User::"alice"` {
		t.Fatalf("second record %+v", d)
	}
	if p, err := c.Query(bg, client.AuditQuery{Source: "platform", Outcomes: []client.Outcome{client.OutcomeFailure}}); err != nil ||
		len(p.Records) != 1 || p.Records[0].Who != "planner" {
		t.Fatalf("by outcome: %+v %v", p, err)
	}
	if p, err := c.Query(bg, client.AuditQuery{Source: "platform", Until: at.Add(time.Second)}); err != nil || len(p.Records) != 1 {
		t.Fatalf("by time: %+v %v", p, err)
	}

	// An inclusion proof verifies; the same proof for another record does
	// not, which is an answer, not an error.
	proof, err := c.GetProof(bg, client.ProofRequest{Kind: client.InclusionProof, Index: one.Index, WithLeaf: true})
	if err != nil || proof.TreeSize <= one.Index || len(proof.Leaf) == 0 || len(proof.Checkpoint) == 0 {
		t.Fatalf("proof: %+v %v", proof, err)
	}
	v, err := c.Verify(bg, client.VerifyProofRequest{Proof: proof})
	if err != nil || !v.Valid || v.Checkpoint.Size != proof.TreeSize || len(v.Checkpoint.RootHash) != 32 {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if v, err := c.Verify(bg, client.VerifyProofRequest{Proof: proof, Record: &r}); err != nil || !v.Valid {
		t.Fatalf("verify the record as queried: %+v %v", v, err)
	}
	other := page.Records[1]
	if v, err := c.Verify(bg, client.VerifyProofRequest{Proof: proof, Record: &other}); err != nil || v.Valid || v.Reason == "" {
		t.Fatalf("another record with the proof: %+v %v", v, err)
	}
	cp, err := c.GetCheckpoint(bg)
	if err != nil || !strings.Contains(cp.Note, cp.Origin) || cp.Size < proof.TreeSize {
		t.Fatalf("checkpoint: %+v %v", cp, err)
	}
	cons, err := c.GetProof(bg, client.ProofRequest{Kind: client.ConsistencyProof, OldSize: 1, TreeSize: cp.Size})
	if err != nil || cons.OldSize != 1 {
		t.Fatalf("consistency proof: %+v %v", cons, err)
	}

	for name, tc := range map[string]struct {
		r      client.AuditRecord
		local  bool
		reason string
	}{
		"no what":         {client.AuditRecord{Outcome: client.OutcomeSuccess}, true, ""},
		"no outcome":      {client.AuditRecord{What: "x"}, true, ""},
		"an index":        {client.AuditRecord{What: "x", Outcome: client.OutcomeSuccess, Index: 3}, true, ""},
		"node's source":   {client.AuditRecord{What: "x", Outcome: client.OutcomeSuccess, Source: "vault"}, false, "INVALID_ARGUMENT"},
		"huge why":        {client.AuditRecord{What: "x", Outcome: client.OutcomeSuccess, Why: strings.Repeat("w", 5000)}, false, "TOO_LARGE"},
		"far future time": {client.AuditRecord{What: "x", Outcome: client.OutcomeSuccess, Timestamp: time.Now().Add(24 * time.Hour)}, false, "INVALID_ARGUMENT"},
	} {
		_, err := c.Log(bg, tc.r)
		var ce *client.Error
		if !errors.As(err, &ce) || !errors.Is(err, client.ErrInvalidRequest) || (ce.Attempts == 0) != tc.local || ce.Reason != tc.reason {
			t.Errorf("%s: %v (%+v)", name, err, ce)
		}
	}
	if _, err := c.Query(bg, client.AuditQuery{PageSize: 1001}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("page size: %v", err)
	}
	if h := c.Health(bg); h.Status != client.Healthy {
		t.Fatalf("health: %+v", h)
	}
}

// platformEvents returns the What of every record a test logged (source
// "platform"), in log order, and fails on a duplicate event id.
func platformEvents(t *testing.T, c *client.AuditClient) []string {
	t.Helper()
	var out []string
	ids := map[string]bool{}
	q := client.AuditQuery{Source: "platform", PageSize: 1000}
	for {
		p, err := c.Query(bg, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			id := r.Context["creto_event_id"]
			if id == "" || ids[id] {
				t.Fatalf("record %d: event id %q missing or seen twice", r.Index, id)
			}
			ids[id] = true
			out = append(out, r.What)
		}
		if p.NextPageToken == "" {
			return out
		}
		q.PageToken = p.NextPageToken
	}
}

func event(what string, critical bool) client.AuditEvent {
	return client.AuditEvent{Critical: critical, Record: client.AuditRecord{Who: "payments", What: what, Outcome: client.OutcomeSuccess, Source: "platform"}}
}

// Emitted events reach the log in order, once each, with an event id; what
// the log would never take is refused at once.
func TestAuditLogger(t *testing.T) {
	tn := startNode(t, "")
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Audit.SpoolPath = filepath.Join(t.TempDir(), "audit.spool")
	cfg.Audit.BatchSize = 7
	c := tn.clients(t, cfg).Audit
	var want []string
	for i := range 50 {
		what := fmt.Sprint("e", i)
		if err := c.Emit(bg, event(what, i%5 == 0)); err != nil {
			t.Fatal(err)
		}
		want = append(want, what)
	}
	if err := c.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if got := platformEvents(t, c); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("logged %v", got)
	}
	if s := c.LoggerStats(); s.Emitted != 50 || s.Delivered != 50 || s.Spooled != 10 || s.Waiting != 0 || s.SpoolWaiting != 0 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}

	for name, ev := range map[string]client.AuditEvent{
		"no what":         {Record: client.AuditRecord{Outcome: client.OutcomeSuccess}},
		"no outcome":      {Record: client.AuditRecord{What: "x"}},
		"reserved key":    {Record: client.AuditRecord{What: "x", Outcome: client.OutcomeSuccess, Context: map[string]string{"creto_event_id": "forged"}}},
		"a full context":  {Record: client.AuditRecord{What: "x", Outcome: client.OutcomeSuccess, Context: fullContext()}},
		"a logged record": {Record: client.AuditRecord{What: "x", Outcome: client.OutcomeSuccess, LoggedAt: time.Now()}},
	} {
		if err := c.Emit(bg, ev); !errors.Is(err, client.ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An event the log refuses is dropped and counted, and those after it
	// in its batch are delivered.
	bad := event("refused", false)
	bad.Record.Source = "vault" // the node's own
	for _, ev := range []client.AuditEvent{event("before", false), bad, event("after", true)} {
		if err := c.Emit(bg, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if got := platformEvents(t, c); strings.Join(got[50:], ",") != "before,after" {
		t.Fatalf("after a refused event: %v", got[50:])
	}
	if s := c.LoggerStats(); s.Refused != 1 || s.Delivered != 52 {
		t.Fatalf("stats %+v", s)
	}

	// Without a spool, a critical event is refused at once: nothing would
	// keep it across a crash.
	noSpool := tn.clients(t, tn.config(tn.GRPCAddr().String())).Audit
	if err := noSpool.Emit(bg, event("x", true)); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Fatalf("critical without a spool: %v", err)
	}
}

// When a batch is refused and its events go one by one, an answer lost
// for one of them leaves only that one to look for in the log: the events
// after it were never sent and must still be, in order.
func TestAuditLoggerLostAnswerInsideARefusedBatch(t *testing.T) {
	tn := startNode(t, "")
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Audit.SpoolPath = filepath.Join(t.TempDir(), "audit.spool")
	cfg.Audit.TimeoutMS = 300
	entered, gate := make(chan struct{}), make(chan struct{})
	var calls, lost atomic.Int32
	intercept := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method != auditv1.AuditService_LogBatch_FullMethodName {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		if calls.Add(1) == 1 {
			close(entered)
			<-gate
		}
		err := invoker(ctx, method, req, reply, cc, opts...)
		recs := req.(*auditv1.LogBatchRequest).GetRecords()
		if err == nil && len(recs) == 1 && recs[0].GetWhat() == "lost" && lost.Add(1) == 1 {
			return status.Error(codes.DeadlineExceeded, "the answer was lost")
		}
		return err
	}
	c := tn.clients(t, cfg, client.WithDialOptions(grpc.WithChainUnaryInterceptor(intercept))).Audit

	if err := c.Emit(bg, event("before", false)); err != nil {
		t.Fatal(err)
	}
	<-entered // the first batch carries "before" alone; the rest wait behind it
	bad := event("refused", false)
	bad.Record.Source = "vault" // the node's own
	for _, ev := range []client.AuditEvent{bad, event("lost", true), event("after-1", false), event("after-2", true)} {
		if err := c.Emit(bg, ev); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if lost.Load() != 1 {
		t.Fatalf("the lost answer was never staged: %d", lost.Load())
	}
	if got := platformEvents(t, c); strings.Join(got, ",") != "before,lost,after-1,after-2" {
		t.Fatalf("logged %v", got)
	}
	if s := c.LoggerStats(); s.Refused != 1 || s.Relogged != 1 || s.Delivered != 3 || s.Dropped != 0 || s.SpoolWaiting != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func fullContext() map[string]string {
	m := map[string]string{}
	for i := range 64 {
		m[fmt.Sprint("k", i)] = "v"
	}
	return m
}

// A caller the node stops accepting — here an agent whose token was
// revoked — is an outage to wait out, not a reason to drop events: they
// wait, the audit client's health says so, and once the token is renewed
// they reach the log in order.
func TestAuditLoggerWaitsOutRefusedCallers(t *testing.T) {
	tn := startNode(t, "")
	tokens := tn.seed("payments")
	var token atomic.Value
	token.Store(tokens["payments"])
	cfg := tn.agentConfig(tn.GRPCAddr().String())
	cfg.Audit.ResetTimeoutSeconds = 1
	c := tn.clients(t, cfg, client.WithTokenSource(func(context.Context) (string, error) { return token.Load().(string), nil })).Audit
	agentEvent := func(what string) client.AuditEvent {
		return client.AuditEvent{Record: client.AuditRecord{What: what, Outcome: client.OutcomeSuccess, Source: "platform"}}
	}
	if err := c.Emit(bg, agentEvent("before")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(bg); err != nil {
		t.Fatal(err)
	}

	ids := nhiv1.NewNhiServiceClient(tn.operator())
	if _, err := ids.RevokeToken(bg, &nhiv1.RevokeTokenRequest{Token: tokens["payments"]}); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"during-1", "during-2"} {
		if err := c.Emit(bg, agentEvent(what)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the logger waiting", func() bool { return c.LoggerStats().Unavailable })
	if h := c.Health(bg); h.Status != client.Degraded || !strings.Contains(h.Reason, "cannot deliver: 2 events waiting") {
		t.Fatalf("health while the logger waits: %+v", h)
	}

	issued, err := ids.IssueToken(bg, &nhiv1.IssueTokenRequest{AgentId: "payments"})
	if err != nil {
		t.Fatal(err)
	}
	token.Store(issued.GetToken())
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := platformEvents(t, c); strings.Join(got, ",") != "before,during-1,during-2" {
		t.Fatalf("logged %v", got)
	}
	if s := c.LoggerStats(); s.Refused != 0 || s.Dropped != 0 || s.Delivered != 3 {
		t.Fatalf("stats %+v", s)
	}
	if h := c.Health(bg); h.Status != client.Healthy {
		t.Fatalf("health after: %+v", h)
	}
}
