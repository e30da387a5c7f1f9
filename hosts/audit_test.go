package hosts_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/nhi"
)

// auditLog is a real audit log and its Logger on a fresh store, readable
// by "auditor".
func auditLog(t testing.TB) (*audit.Service, *audit.Logger) {
	t.Helper()
	dir := t.TempDir()
	st, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer sealer.Close()
	auditor := audit.AuthorizerFunc(func(_ context.Context, caller, _ string, _ audit.Access) error {
		if caller == "auditor" {
			return nil
		}
		return audit.ErrAccessDenied
	})
	svc, err := audit.Open(context.Background(), st, sealer, audit.Config{Authorizer: auditor})
	if err != nil {
		t.Fatal(err)
	}
	logger, err := audit.NewLogger(svc, audit.LoggerConfig{SpoolPath: filepath.Join(dir, "audit.spool"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logger.Close(context.Background()); svc.Close(); st.Close() })
	return svc, logger
}

// logged flushes the Logger and returns every record.
func logged(t *testing.T, svc *audit.Service, l *audit.Logger) []audit.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Query(ctx, "auditor", audit.QueryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Records
}

// auditEngine permits everything and provides creto:audit/v1 over h, with
// the audit_emit guest registered as "hook".
func auditEngine(t *testing.T, h hosts.Audit) *engine.Engine {
	t.Helper()
	e := engine.New(engine.WithHostModules(h))
	t.Cleanup(func() { e.Close() })
	if _, err := e.CreatePolicy(context.Background(), "all", `permit (principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RegisterExtension(context.Background(), vaultGuest(t, "audit_emit.wasm", `{"name": "hook", "capabilities": ["audit"]}`),
		engine.ExtensionConfig{Grants: []string{abi.CapabilityAudit}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// emitted checks a request about resource id and returns what emit
// answered the guest.
func emitted(t *testing.T, e *engine.Engine, resource string) int {
	t.Helper()
	d, err := e.Check(context.Background(), engine.Request{
		Principal:  engine.Principal{Type: "Agent", ID: "payments-bot"},
		Delegation: []engine.EntityRef{{Type: "User", ID: "alice"}},
		Action:     engine.EntityRef{ID: "pay"},
		Resource:   engine.EntityRef{Type: "Invoice", ID: resource},
		TraceID:    "trace-9",
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != engine.Deny || d.PolicyID != "audit" {
		t.Fatalf("decision %v by %q (%s), want the guest's deny", d.Kind, d.PolicyID, d.Reason)
	}
	code, err := strconv.Atoi(d.Reason)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// The guest says what happened; the host says who: the request's
// principal, chain and trace, from source ext:hook, and the extension
// itself when no request is being evaluated.
func TestAuditHostRecordsInThePrincipalsName(t *testing.T) {
	svc, logger := auditLog(t)
	e := auditEngine(t, hosts.Audit{Events: logger})
	if code := emitted(t, e, "inv-9"); code != 0 {
		t.Fatalf("emit: %d", code)
	}
	rs := logged(t, svc, logger)
	if len(rs) != 2 {
		t.Fatalf("%d records: %+v", len(rs), rs)
	}
	if r := rs[0]; r.Who != "extension:hook" || r.What != "ext.loaded" || r.Source != "ext:hook" || r.Outcome != audit.Success {
		t.Errorf("creto_init's record: %+v", r)
	}
	r := rs[1]
	if r.Who != "payments-bot" || r.Source != "ext:hook" || r.What != "payment.flagged" || r.Resource != "inv-9" ||
		r.Why != "over the limit" || r.Outcome != audit.Denied || r.TraceID != "trace-9" ||
		strings.Join(r.DelegationChain, ",") != `User::"alice"` ||
		r.Context["rule"] != "r1" || r.Context["principal_type"] != "Agent" || len(r.Context) != 2 {
		t.Errorf("evaluation's record: %+v", r)
	}
	if time.Since(r.Timestamp) > time.Minute || r.Timestamp.After(r.LoggedAt) {
		t.Errorf("timestamp %v, logged at %v", r.Timestamp, r.LoggedAt)
	}
}

// A record the log would refuse is EINVAL to the guest and never reaches
// the log; without a log, and past the rate, emit is EUNAVAILABLE.
func TestAuditHostRefusals(t *testing.T) {
	svc, logger := auditLog(t)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	e := auditEngine(t, hosts.Audit{Events: logger, PerSecond: 3, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if code := emitted(t, e, "line\nbreak"); code != abi.EInvalid {
		t.Fatalf("a control character in the resource: %d", code)
	}
	// The init emit took one token and the refused one another: one left.
	if code := emitted(t, e, "inv-1"); code != 0 {
		t.Fatalf("within the rate: %d", code)
	}
	if code := emitted(t, e, "inv-2"); code != abi.EUnavailable {
		t.Fatalf("past the rate: %d", code)
	}
	clock.Add(int64(time.Second))
	if code := emitted(t, e, "inv-3"); code != 0 {
		t.Fatalf("a second later: %d", code)
	}
	var resources []string
	for _, r := range logged(t, svc, logger) {
		resources = append(resources, r.Resource)
	}
	if strings.Join(resources, ",") != ",inv-1,inv-3" {
		t.Fatalf("logged %q", resources)
	}
	if st := logger.Stats(); st.Invalid != 0 {
		t.Fatalf("the Logger saw invalid events: %+v", st)
	}

	if code := emitted(t, auditEngine(t, hosts.Audit{}), "inv-4"); code != abi.EUnavailable {
		t.Fatalf("no log: %d", code)
	}
}

// An extension gets creto:audit/v1 only with the capability in its
// manifest and the operator's grant.
func TestAuditHostNeedsTheGrant(t *testing.T) {
	_, logger := auditLog(t)
	e := engine.New(engine.WithHostModules(hosts.Audit{Events: logger}))
	t.Cleanup(func() { e.Close() })
	for name, c := range map[string]struct {
		manifest string
		grants   []string
	}{
		"not in the manifest": {`{"name": "a"}`, []string{abi.CapabilityAudit}},
		"not granted":         {`{"name": "b", "capabilities": ["audit"]}`, nil},
	} {
		_, err := e.RegisterExtension(context.Background(), vaultGuest(t, "audit_emit.wasm", c.manifest), engine.ExtensionConfig{Grants: c.grants})
		if !errors.Is(err, engine.ErrImportNotGranted) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
