package feed_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/audit/feed"
	"github.com/creto-systems/creto/services/vault"
)

// Every vault operation and outcome makes a valid record that gives the
// access event back, never a value; the resource names one secret.
func TestVaultRecordsRoundTrip(t *testing.T) {
	at := time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC)
	ops := 0
	for op := vault.OpGet; !strings.HasPrefix(op.String(), "operation("); op++ {
		ops++
		for _, o := range []vault.Outcome{vault.OutcomeAllowed, vault.OutcomeDenied, vault.OutcomeFailed} {
			ev := vault.AccessEvent{Time: at, Agent: "runtime", Operation: op, Ref: vault.SecretRef{Path: "agents/runtime/keys", Name: "API_KEY"},
				Version: 3, DelegationID: "d-1", SandboxID: "sb-7", Outcome: o}
			if o != vault.OutcomeAllowed {
				ev.Reason = vault.ErrorCode(vault.ErrAccessDenied)
			}
			r := feed.Vault(ev)
			if err := r.Validate(); err != nil {
				t.Fatalf("%v %v: %v", op, o, err)
			}
			if r.What != "vault."+op.String() || r.Resource != `Secret::"agents/runtime/keys/API_KEY"` || r.Source != "vault" {
				t.Fatalf("record %+v", r)
			}
			back, ok := feed.VaultAccess(&r)
			if !ok || !reflect.DeepEqual(back, ev) {
				t.Fatalf("%v %v: got back %+v", op, o, back)
			}
		}
	}
	if ops < 15 {
		t.Fatalf("only %d operations", ops)
	}
	if got := feed.VaultResource(vault.SecretRef{Path: "agents/a"}); got != `SecretPath::"agents/a"` {
		t.Fatal(got)
	}
	other := audit.Record{Source: "api", What: "vault.get", Context: map[string]string{"operation": "get"}}
	if _, ok := feed.VaultAccess(&other); ok {
		t.Fatal("a client's record taken for the vault's")
	}
}

// NotAllowed passes on everything but plain allows.
func TestNotAllowed(t *testing.T) {
	var seen []string
	o := feed.NotAllowed(recorder{&seen})
	req := engine.Request{Action: engine.EntityRef{ID: "read"}}
	o.Decided(bg, req, engine.Decision{Kind: engine.Allow}, nil)
	o.Decided(bg, req, engine.Decision{Kind: engine.Allow, Cached: true}, nil)
	o.Decided(bg, req, engine.Decision{Kind: engine.Deny}, nil)
	o.Decided(bg, req, engine.Decision{Kind: engine.QuotaExceeded}, nil)
	o.Decided(bg, req, engine.Decision{Kind: engine.Allow}, engine.ErrInvalidRequest)
	o.ExtensionFailed(bg, req, engine.ExtensionError{Extension: "x"})
	if got := strings.Join(seen, ","); got != "deny,quota_exceeded,allow+err,failed" {
		t.Fatal(got)
	}
}

type recorder struct{ seen *[]string }

func (r recorder) Decided(_ context.Context, _ engine.Request, d engine.Decision, err error) {
	s := d.Kind.String()
	if err != nil {
		s += "+err"
	}
	*r.seen = append(*r.seen, s)
}

func (r recorder) ExtensionFailed(context.Context, engine.Request, engine.ExtensionError) {
	*r.seen = append(*r.seen, "failed")
}

// A refused call is the caller's record, with the method as resource.
func TestCallDenied(t *testing.T) {
	r := feed.CallDenied(caller.Identity{Kind: caller.Operator, ID: "ci"}, "/creto.vault.v1.VaultAdminService/Seal", "not permitted")
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Who != `Operator::"ci"` || r.Resource != `Method::"/creto.vault.v1.VaultAdminService/Seal"` || r.Outcome != audit.Denied ||
		r.Context["service"] != "creto.vault.v1.VaultAdminService" || r.Context["caller_kind"] != "Operator" || r.Source != "node" {
		t.Fatalf("%+v", r)
	}
	hostile := feed.CallDenied(caller.Identity{Kind: caller.Agent, ID: "a\nb"}, "/x/\x00", strings.Repeat("\xff", 10))
	if err := hostile.Validate(); err != nil {
		t.Fatalf("a hostile caller's refusal must still be a valid record: %v", err)
	}
}
