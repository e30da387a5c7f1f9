package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/creto-systems/creto/engine"
)

var bg = context.Background()

const entitiesJSON = `[
  {"uid": {"type": "Agent", "id": "scout"}, "parents": [{"type": "Team", "id": "research"}], "attrs": {"clearance": 2}},
  {"uid": {"type": "Agent", "id": "rogue"}, "parents": [{"type": "Team", "id": "research"}], "attrs": {"clearance": 0, "revoked": true}},
  {"uid": {"type": "Team", "id": "research"}, "parents": [{"type": "Org", "id": "acme"}], "attrs": {}},
  {"uid": {"type": "Org", "id": "acme"}, "parents": [], "attrs": {}},
  {"uid": {"type": "Human", "id": "alice"}, "parents": [], "attrs": {}},
  {"uid": {"type": "Doc", "id": "plan"}, "parents": [{"type": "Folder", "id": "shared"}], "attrs": {"secret": false}},
  {"uid": {"type": "Doc", "id": "keys"}, "parents": [{"type": "Folder", "id": "shared"}], "attrs": {"secret": true}},
  {"uid": {"type": "Folder", "id": "shared"}, "parents": [], "attrs": {}},
  {"uid": {"type": "Action", "id": "read"}, "parents": [{"type": "Action", "id": "readOnly"}], "attrs": {}},
  {"uid": {"type": "Action", "id": "readOnly"}, "parents": [], "attrs": {}}
]`

const policiesText = `
@id("org-read")
permit(principal in Org::"acme", action in Action::"readOnly", resource in Folder::"shared");

@id("no-secrets")
@reason("secret documents need clearance 3")
forbid(principal, action, resource is Doc) when { resource.secret && principal.clearance < 3 };

@id("revoked")
@reason("the agent is revoked")
forbid(principal is Agent, action, resource) when { principal has revoked && principal.revoked };

@id("transfer")
@oversight("two-person") @approvers("alice, bob") @timeout("30m")
permit(principal is Agent, action == Action::"transfer", resource) when { context.amount > 1000 };

@id("small-transfer")
permit(principal is Agent, action == Action::"transfer", resource) when { context.amount <= 1000 };

@id("delegated-write")
permit(principal, action == Action::"write", resource)
  when { context has delegation && context.delegation.origin == Human::"alice" && context.delegation.depth <= 2 };
`

func newTestEngine(t testing.TB, opts ...engine.Option) *engine.Engine {
	t.Helper()
	ents := engine.NewEntities()
	if err := ents.ReplaceJSON([]byte(entitiesJSON)); err != nil {
		t.Fatal(err)
	}
	e := engine.New(append([]engine.Option{engine.WithEntities(ents)}, opts...)...)
	t.Cleanup(func() { e.Close() })
	srcs, err := engine.ParseFile("test.cedar", []byte(policiesText))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ReplacePolicies(bg, srcs); err != nil {
		t.Fatal(err)
	}
	return e
}

func req(principal, action, resource string, ctx string) engine.Request {
	ref := func(s string) engine.EntityRef {
		typ, id, _ := strings.Cut(s, ":")
		return engine.EntityRef{Type: typ, ID: id}
	}
	p := ref(principal)
	r := engine.Request{Principal: engine.Principal{Type: p.Type, ID: p.ID}, Action: engine.EntityRef{ID: action}, Resource: ref(resource)}
	if ctx != "" {
		r.Context = json.RawMessage(ctx)
	}
	return r
}

func TestDecisions(t *testing.T) {
	e := newTestEngine(t)
	cases := []struct {
		name     string
		req      engine.Request
		kind     engine.Kind
		policyID string
		reason   string
		matched  []string
	}{
		{"group permit through two levels", req("Agent:scout", "read", "Doc:plan", ""), engine.Allow, "", "", []string{"org-read"}},
		{"forbid with reason", req("Agent:scout", "read", "Doc:keys", ""), engine.Deny, "no-secrets", "secret documents need clearance 3", []string{"no-secrets"}},
		{"two forbids: first by id decides, both listed", req("Agent:rogue", "read", "Doc:keys", ""), engine.Deny, "no-secrets", "secret documents need clearance 3", []string{"no-secrets", "revoked"}},
		{"default deny", req("Agent:scout", "delete", "Doc:plan", ""), engine.Deny, "", engine.DefaultDenyReason, nil},
		{"oversight", req("Agent:scout", "transfer", "Doc:plan", `{"amount": 5000}`), engine.RequiresOversight, "transfer", "", []string{"transfer"}},
		{"below oversight threshold", req("Agent:scout", "transfer", "Doc:plan", `{"amount": 10}`), engine.Allow, "", "", []string{"small-transfer"}},
		{"unknown principal is just denied", req("Agent:nobody", "read", "Doc:plan", ""), engine.Deny, "", engine.DefaultDenyReason, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := e.Check(bg, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Kind != c.kind || d.PolicyID != c.policyID || d.Reason != c.reason || strings.Join(d.MatchedPolicies, ",") != strings.Join(c.matched, ",") {
				t.Fatalf("got %v policy=%q reason=%q matched=%v; want %v policy=%q reason=%q matched=%v",
					d.Kind, d.PolicyID, d.Reason, d.MatchedPolicies, c.kind, c.policyID, c.reason, c.matched)
			}
		})
	}
	d, _ := e.Check(bg, req("Agent:scout", "transfer", "Doc:plan", `{"amount": 5000}`))
	if d.Oversight.Requirement != "two-person" || d.Oversight.Timeout != 30*time.Minute ||
		strings.Join(d.Oversight.Approvers, ",") != "alice,bob" {
		t.Fatalf("oversight details: %+v", d.Oversight)
	}
}

func TestOversightIsNotBypassedByABroaderPermit(t *testing.T) {
	e := newTestEngine(t)
	if _, err := e.CreatePolicy(bg, "anything-goes", `permit(principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	d, err := e.Check(bg, req("Agent:scout", "transfer", "Doc:plan", `{"amount": 5000}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != engine.RequiresOversight || d.PolicyID != "transfer" {
		t.Fatalf("a broad permit must not silence @oversight: got %v (%s)", d.Kind, d.PolicyID)
	}
}

func TestEvaluationErrorsAreReported(t *testing.T) {
	e := newTestEngine(t)
	// transfer policies read context.amount, which is missing: Cedar skips
	// both with an error and the request falls to the default deny.
	d, err := e.Check(bg, req("Agent:scout", "transfer", "Doc:plan", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != engine.Deny || len(d.Errors) != 2 || d.Errors[0].PolicyID != "small-transfer" || d.Errors[1].PolicyID != "transfer" {
		t.Fatalf("got %v errors=%+v", d.Kind, d.Errors)
	}
}

func TestDelegationChainIsVisibleToPolicies(t *testing.T) {
	e := newTestEngine(t)
	r := req("Agent:scout", "write", "Doc:plan", "")
	d, _ := e.Check(bg, r)
	if d.Kind != engine.Deny {
		t.Fatalf("without a chain: %v", d.Kind)
	}
	r.Delegation = []engine.EntityRef{{Type: "Human", ID: "alice"}, {Type: "Agent", ID: "planner"}}
	if d, _ = e.Check(bg, r); d.Kind != engine.Allow {
		t.Fatalf("alice's two-link chain: %v %+v", d.Kind, d.Errors)
	}
	r.Delegation = []engine.EntityRef{{Type: "Human", ID: "mallory"}, {Type: "Agent", ID: "planner"}}
	if d, _ = e.Check(bg, r); d.Kind != engine.Deny {
		t.Fatalf("another origin: %v", d.Kind)
	}
	r.Delegation = []engine.EntityRef{{Type: "Human", ID: "alice"}, {Type: "Agent", ID: "a"}, {Type: "Agent", ID: "b"}}
	if d, _ = e.Check(bg, r); d.Kind != engine.Deny {
		t.Fatalf("a chain too deep for the policy: %v", d.Kind)
	}
}

func TestPrincipalAttributesOverlayTheEntity(t *testing.T) {
	e := newTestEngine(t)
	r := req("Agent:scout", "read", "Doc:keys", "")
	if d, _ := e.Check(bg, r); d.Kind != engine.Deny {
		t.Fatalf("clearance 2 must not read secrets: %v", d.Kind)
	}
	r.Principal.Attributes = json.RawMessage(`{"clearance": 3}`)
	if d, _ := e.Check(bg, r); d.Kind != engine.Allow {
		t.Fatalf("the request's clearance 3 must win: %v %v", d.Kind, d.Reason)
	}
}

func TestBadRequestsAreDeniedWithTypedErrors(t *testing.T) {
	e := newTestEngine(t)
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	huge := `{"blob":"` + strings.Repeat("x", 10<<20) + `"}`
	cases := map[string]engine.Request{
		"context is an array":        req("Agent:scout", "read", "Doc:plan", `[1,2]`),
		"context is a string":        req("Agent:scout", "read", "Doc:plan", `"hi"`),
		"context is not JSON":        req("Agent:scout", "read", "Doc:plan", `{"a":`),
		"deeply nested context":      req("Agent:scout", "read", "Doc:plan", deep),
		"10 MiB request":             req("Agent:scout", "read", "Doc:plan", huge),
		"reserved delegation key":    req("Agent:scout", "read", "Doc:plan", `{"delegation": {"depth": 0}}`),
		"no principal type":          req(":scout", "read", "Doc:plan", ""),
		"no resource type":           req("Agent:scout", "read", ":plan", ""),
		"null in context":            req("Agent:scout", "transfer", "Doc:plan", `{"amount": null}`),
		"malformed entity escape":    req("Agent:scout", "transfer", "Doc:plan", `{"amount": {"__entity": {"type": "", "id": "x"}}}`),
		"principal attributes array": {Principal: engine.Principal{Type: "Agent", ID: "scout", Attributes: json.RawMessage(`[1]`)}, Action: engine.EntityRef{ID: "read"}, Resource: engine.EntityRef{Type: "Doc", ID: "plan"}},
		"eleven-link delegation": func() engine.Request {
			r := req("Agent:scout", "read", "Doc:plan", "")
			r.Delegation = make([]engine.EntityRef, 11)
			return r
		}(),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			d, err := e.Check(bg, r)
			if name == "malformed entity escape" || name == "null in context" {
				// Decoded only because a conditional policy reads context.
				if d.Kind == engine.Allow {
					t.Fatal("allowed")
				}
			}
			if !errors.Is(err, engine.ErrInvalidRequest) {
				t.Fatalf("err = %v, want ErrInvalidRequest", err)
			}
			if d.Kind != engine.Deny {
				t.Fatalf("decision %v, want a fail-secure Deny", d.Kind)
			}
		})
	}
	if got := e.Stats().Policies; got != 6 {
		t.Fatalf("bad requests changed the store: %d policies", got)
	}
}

// TestContextIsValidatedWhateverThePolicies: a request decided from scopes
// alone never reads its context, but a malformed context is still refused,
// so validity does not depend on which policies happen to match.
func TestContextIsValidatedWhateverThePolicies(t *testing.T) {
	e := newTestEngine(t)
	scopeOnly := req("Team:research", "read", "Folder:shared", "")
	if d, err := e.Check(bg, scopeOnly); err != nil || d.Kind != engine.Allow || d.MatchedPolicies[0] != "org-read" {
		t.Fatalf("baseline: %v %v %v", d.Kind, d.MatchedPolicies, err)
	}
	for _, ctx := range []string{`{"x": 1.5}`, `{"x": null}`, `{"x": [1, null]}`, `{"x": {"__extn": {"fn": "nope", "arg": "1"}}}`, `{"x": 1, "x": 2}`} {
		r := scopeOnly
		r.Context = json.RawMessage(ctx)
		if d, err := e.Check(bg, r); !errors.Is(err, engine.ErrInvalidRequest) || d.Kind != engine.Deny {
			t.Errorf("context %s: %v %v", ctx, d.Kind, err)
		}
	}
}

func TestUnknownEntityReferencesEvaluate(t *testing.T) {
	e := newTestEngine(t)
	d, err := e.Check(bg, req("Ghost:x", "read", "Nowhere:y", `{"ref": {"__entity": {"type": "Missing", "id": "z"}}}`))
	if err != nil || d.Kind != engine.Deny || d.Reason != engine.DefaultDenyReason {
		t.Fatalf("got %v %q %v", d.Kind, d.Reason, err)
	}
}

func TestPolicyStoreLifecycle(t *testing.T) {
	e := engine.New()
	defer e.Close()
	p, err := e.CreatePolicy(bg, "", `@id("p1") permit(principal, action == Action::"read", resource);`)
	if err != nil || p.ID != "p1" || p.Version == 0 || p.Effect != "permit" {
		t.Fatalf("create from @id: %+v %v", p, err)
	}
	if _, err := e.CreatePolicy(bg, "p1", `permit(principal, action, resource);`); !errors.Is(err, engine.ErrPolicyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := e.CreatePolicy(bg, "p2", `@id("other") permit(principal, action, resource);`); !errors.Is(err, engine.ErrInvalidPolicy) {
		t.Fatalf("id that contradicts @id: %v", err)
	}
	if _, err := e.CreatePolicy(bg, "", `permit(principal, action, resource);`); !errors.Is(err, engine.ErrInvalidPolicy) {
		t.Fatalf("no id at all: %v", err)
	}
	v1 := p.Version
	p2, err := e.UpdatePolicy(bg, "p1", `@id("p1") permit(principal, action == Action::"write", resource);`, v1)
	if err != nil || p2.Version == v1 {
		t.Fatalf("update: %+v %v", p2, err)
	}
	if _, err := e.UpdatePolicy(bg, "p1", `permit(principal, action, resource);`, v1); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("stale etag: %v", err)
	}
	if err := e.DeletePolicy(bg, "p1", v1); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("stale delete: %v", err)
	}
	if _, err := e.UpdatePolicy(bg, "nope", `permit(principal, action, resource);`, 0); !errors.Is(err, engine.ErrPolicyNotFound) {
		t.Fatalf("update of a missing policy: %v", err)
	}
	got, err := e.GetPolicy("p1")
	if err != nil || !strings.Contains(got.Text, "write") || got.Version != p2.Version {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := e.DeletePolicy(bg, "p1", p2.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GetPolicy("p1"); !errors.Is(err, engine.ErrPolicyNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestRejectedChangesChangeNothing(t *testing.T) {
	e := newTestEngine(t)
	before := e.ListPolicies()
	epoch := e.Stats().Epoch
	bad := []struct {
		name   string
		change []engine.Change
		line   int
	}{
		{"syntax error", []engine.Change{{Op: engine.OpCreate, ID: "x", Text: "permit(principal, action,\n  resource) when { principal. };"}}, 2},
		{"two policies in one change", []engine.Change{{Op: engine.OpCreate, ID: "x", Text: `permit(principal, action, resource); permit(principal, action, resource);`}}, 0},
		{"bad timeout", []engine.Change{{Op: engine.OpCreate, ID: "x", Text: `@oversight("x") @timeout("soon") permit(principal, action, resource);`}}, 0},
		{"oversight on a forbid", []engine.Change{{Op: engine.OpCreate, ID: "x", Text: `@oversight("x") forbid(principal, action, resource);`}}, 0},
		{"approvers without oversight", []engine.Change{{Op: engine.OpCreate, ID: "x", Text: `@approvers("a") permit(principal, action, resource);`}}, 0},
		{"one good change and one bad", []engine.Change{
			{Op: engine.OpCreate, ID: "fine", Text: `permit(principal, action, resource);`},
			{Op: engine.OpDelete, ID: "does-not-exist"},
		}, 0},
		{"unknown op", []engine.Change{{Op: 99, ID: "x"}}, 0},
	}
	for _, b := range bad {
		_, err := e.ApplyPolicies(bg, b.change...)
		if err == nil {
			t.Fatalf("%s: accepted", b.name)
		}
		var pe *engine.PolicyError
		if !errors.As(err, &pe) {
			t.Fatalf("%s: %T is not a *PolicyError: %v", b.name, err, err)
		}
		if b.line > 0 && pe.Line != b.line {
			t.Fatalf("%s: line %d, want %d (%v)", b.name, pe.Line, b.line, err)
		}
	}
	if after := e.ListPolicies(); len(after) != len(before) || e.Stats().Epoch != epoch {
		t.Fatalf("a rejected change took effect: %d → %d policies, epoch %d → %d", len(before), len(after), epoch, e.Stats().Epoch)
	}
}

func TestAtomicMultiPolicyChange(t *testing.T) {
	e := newTestEngine(t)
	out, err := e.ApplyPolicies(bg,
		engine.Change{Op: engine.OpDelete, ID: "org-read"},
		engine.Change{Op: engine.OpUpsert, ID: "org-read-2", Text: `permit(principal in Team::"research", action == Action::"read", resource);`},
	)
	if err != nil || len(out) != 1 || out[0].ID != "org-read-2" {
		t.Fatalf("%v %+v", err, out)
	}
	d, _ := e.Check(bg, req("Agent:scout", "read", "Doc:plan", ""))
	if d.Kind != engine.Allow || d.MatchedPolicies[0] != "org-read-2" {
		t.Fatalf("after the change: %v %v", d.Kind, d.MatchedPolicies)
	}
}

func TestCacheIsAllowOnlyAndInvalidatedByChanges(t *testing.T) {
	ents := engine.NewEntities()
	if err := ents.ReplaceJSON([]byte(entitiesJSON)); err != nil {
		t.Fatal(err)
	}
	e := engine.New(engine.WithEntities(ents))
	defer e.Close()
	if _, err := e.CreatePolicy(bg, "read", `permit(principal in Team::"research", action == Action::"read", resource);`); err != nil {
		t.Fatal(err)
	}
	allow := req("Agent:scout", "read", "Doc:plan", `{"x": 1}`)
	deny := req("Agent:scout", "write", "Doc:plan", "")
	for range 3 {
		e.Check(bg, allow)
		e.Check(bg, deny)
	}
	if d, _ := e.Check(bg, allow); !d.Cached {
		t.Fatal("a repeated allow was not cached")
	}
	if d, _ := e.Check(bg, deny); d.Cached {
		t.Fatal("a deny was cached")
	}
	// The trace id does not change the decision, so it shares the entry;
	// the context does, so it does not.
	traced := allow
	traced.TraceID = "t-1"
	if d, _ := e.Check(bg, traced); !d.Cached {
		t.Fatal("trace id split the cache")
	}
	other := allow
	other.Context = json.RawMessage(`{"x": 2}`)
	if d, _ := e.Check(bg, other); d.Cached {
		t.Fatal("a different context hit the cache")
	}
	st := e.Stats().Cache
	if st.Hits < 4 || st.Misses < 4 {
		t.Fatalf("cache counters: %+v", st)
	}

	// A forbid added after the allow was cached must win at once.
	if _, err := e.CreatePolicy(bg, "lockdown", `forbid(principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Check(bg, allow); d.Kind != engine.Deny || d.Cached {
		t.Fatalf("after a policy change: %v cached=%v", d.Kind, d.Cached)
	}
	if err := e.DeletePolicy(bg, "lockdown", 0); err != nil {
		t.Fatal(err)
	}
	e.Check(bg, allow)
	if d, _ := e.Check(bg, allow); !d.Cached {
		t.Fatal("not cached again")
	}
	// Moving the agent out of the team must win at once too.
	if err := ents.ReplaceJSON([]byte(`[{"uid": {"type": "Agent", "id": "scout"}, "parents": [], "attrs": {}}]`)); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Check(bg, allow); d.Kind != engine.Deny || d.Cached {
		t.Fatalf("after an entity change: %v cached=%v", d.Kind, d.Cached)
	}
}

func TestCacheExpires(t *testing.T) {
	e := engine.New(engine.WithCache(engine.CacheConfig{Enabled: true, TTL: 20 * time.Millisecond, MaxEntries: 10}))
	defer e.Close()
	if _, err := e.CreatePolicy(bg, "all", `permit(principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	r := req("Agent:a", "read", "Doc:d", "")
	e.Check(bg, r)
	if d, _ := e.Check(bg, r); !d.Cached {
		t.Fatal("not cached")
	}
	time.Sleep(40 * time.Millisecond)
	if d, _ := e.Check(bg, r); d.Cached {
		t.Fatal("served after its TTL")
	}
	// The cache is bounded.
	for i := range 100 {
		e.Check(bg, req(fmt.Sprintf("Agent:a%d", i), "read", "Doc:d", ""))
	}
	if n := e.Stats().Cache.Entries; n > 16 {
		t.Fatalf("cache grew to %d entries past its bound", n)
	}
}

func TestCheckBatch(t *testing.T) {
	e := newTestEngine(t)
	reqs := make([]engine.Request, 300)
	for i := range reqs {
		switch i % 3 {
		case 0:
			reqs[i] = req("Agent:scout", "read", "Doc:plan", "")
		case 1:
			reqs[i] = req("Agent:scout", "read", "Doc:keys", "")
		default:
			reqs[i] = req("Agent:scout", "read", "Doc:plan", `[bad]`)
		}
	}
	ds, err := e.CheckBatch(bg, reqs)
	var be *engine.BatchError
	if !errors.As(err, &be) || len(be.Items) != 100 || !errors.Is(err, engine.ErrInvalidRequest) {
		t.Fatalf("batch error: %v", err)
	}
	for i, d := range ds {
		want := []engine.Kind{engine.Allow, engine.Deny, engine.Deny}[i%3]
		if d.Kind != want {
			t.Fatalf("item %d: %v, want %v", i, d.Kind, want)
		}
		if _, bad := be.Items[i]; bad != (i%3 == 2) {
			t.Fatalf("item %d wrongly reported", i)
		}
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	ds, err = e.CheckBatch(ctx, reqs[:50])
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled batch: %v", err)
	}
	for _, d := range ds {
		if d.Kind != engine.Deny {
			t.Fatal("a cancelled batch must deny")
		}
	}
}

// TestConcurrentReadersAndWriters runs checks while policies and entities
// change; under -race it proves checks and writes share nothing unsafely,
// and every decision must be one the policy set could give at some point.
func TestConcurrentReadersAndWriters(t *testing.T) {
	e := newTestEngine(t)
	ents := engine.NewEntities()
	if err := ents.ReplaceJSON([]byte(entitiesJSON)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-%d", w, i%20)
				e.ApplyPolicies(bg, engine.Change{Op: engine.OpUpsert, ID: id,
					Text: fmt.Sprintf(`permit(principal, action == Action::"a%d", resource);`, i%7)})
				if i%5 == 0 {
					e.DeletePolicy(bg, id, 0)
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				d, err := e.Check(bg, req("Agent:scout", "read", "Doc:plan", `{"n": 1}`))
				if err != nil || d.Kind != engine.Allow {
					t.Errorf("org-read must keep allowing: %v %v", d.Kind, err)
					return
				}
				if d, _ := e.Check(bg, req("Agent:scout", "read", "Doc:keys", "")); d.Kind != engine.Deny {
					t.Errorf("no-secrets must keep denying: %v", d.Kind)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSchemaValidation(t *testing.T) {
	const schemaText = `
entity Team;
entity Agent in [Team] { clearance: Long };
entity Doc { secret: Bool };
action read appliesTo { principal: [Agent], resource: [Doc], context: { risk: Long } };
`
	e := engine.New()
	defer e.Close()
	if err := e.SetSchema("s.cedarschema", []byte("entity ;")); !errors.Is(err, engine.ErrInvalidSchema) {
		t.Fatalf("bad schema: %v", err)
	}
	if _, err := e.CreatePolicy(bg, "old", `permit(principal, action == Action::"fly", resource);`); err != nil {
		t.Fatal(err)
	}
	if err := e.SetSchema("s.cedarschema", []byte(schemaText)); !errors.Is(err, engine.ErrInvalidPolicy) {
		t.Fatalf("a schema the current policies violate must be refused: %v", err)
	}
	if err := e.DeletePolicy(bg, "old", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.SetSchema("s.cedarschema", []byte(schemaText)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreatePolicy(bg, "ok", `permit(principal is Agent, action == Action::"read", resource) when { principal.clearance > 1 && context.risk < 3 };`); err != nil {
		t.Fatalf("a conforming policy: %v", err)
	}
	_, err := e.CreatePolicy(bg, "typo", "permit(principal is Agent, action == Action::\"read\", resource)\n  when { principal.clearence > 1 };")
	var pe *engine.PolicyError
	if !errors.As(err, &pe) || !errors.Is(err, engine.ErrInvalidPolicy) || !strings.Contains(err.Error(), "clearence") {
		t.Fatalf("attribute typo: %v", err)
	}
	if len(e.ListPolicies()) != 1 {
		t.Fatal("the invalid policy was stored")
	}
	var em cedar.EntityMap
	if err := em.UnmarshalJSON([]byte(`[{"uid": {"type": "Agent", "id": "a"}, "parents": [], "attrs": {"clearance": "high"}}]`)); err != nil {
		t.Fatal(err)
	}
	if err := e.CheckEntities(em); !errors.Is(err, engine.ErrInvalidEntities) {
		t.Fatalf("entity with a wrongly typed attribute: %v", err)
	}
}

func TestRequestValidationAgainstSchema(t *testing.T) {
	e := engine.New(engine.WithRequestValidation())
	defer e.Close()
	if err := e.SetSchema("s", []byte(`entity Agent; entity Doc; action read appliesTo { principal: [Agent], resource: [Doc], context: { risk: Long } };`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreatePolicy(bg, "p", `permit(principal, action == Action::"read", resource);`); err != nil {
		t.Fatal(err)
	}
	if d, err := e.Check(bg, req("Agent:a", "read", "Doc:d", `{"risk": 1}`)); err != nil || d.Kind != engine.Allow {
		t.Fatalf("conforming request: %v %v", d.Kind, err)
	}
	if _, err := e.Check(bg, req("Agent:a", "read", "Doc:d", `{"risk": "low"}`)); !errors.Is(err, engine.ErrInvalidRequest) {
		t.Fatalf("mistyped context: %v", err)
	}
}

func TestLoadAndWatchPolicyDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.cedar", `@id("a") permit(principal, action == Action::"read", resource);`+"\n"+`permit(principal, action == Action::"list", resource);`)
	e := engine.New()
	defer e.Close()
	if err := e.LoadPolicyDir(bg, dir); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, p := range e.ListPolicies() {
		ids = append(ids, p.ID)
	}
	if strings.Join(ids, ",") != "a,a.cedar#1" {
		t.Fatalf("ids: %v", ids)
	}
	va, _ := e.GetPolicy("a")

	errs := make(chan error, 10)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	if err := e.WatchPolicyDir(ctx, dir, func(err error) { errs <- err }); err != nil {
		t.Fatal(err)
	}
	write("b.cedar", `@id("b") forbid(principal, action, resource);`)
	waitFor(t, func() bool { _, err := e.GetPolicy("b"); return err == nil })
	if vb, _ := e.GetPolicy("a"); vb.Version != va.Version {
		t.Fatal("an unchanged policy got a new version on reload")
	}
	write("c.cedar", `permit(principal,`)
	select {
	case err := <-errs:
		var pe *engine.PolicyError
		if !errors.As(err, &pe) || pe.File != "c.cedar" || pe.Line != 1 {
			t.Fatalf("reload error: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a broken file was not reported")
	}
	if _, err := e.GetPolicy("b"); err != nil {
		t.Fatal("a failed reload dropped policies")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEntityChangesApplyAtOnce: with the decision cache off, what the engine
// remembers about entities (ancestors, interned ids) must still follow
// every entity change.
func TestEntityChangesApplyAtOnce(t *testing.T) {
	ents := engine.NewEntities()
	e := engine.New(engine.WithEntities(ents), engine.WithCache(engine.CacheConfig{}))
	defer e.Close()
	if _, err := e.CreatePolicy(bg, "team", `permit(principal in Team::"research", action, resource);`); err != nil {
		t.Fatal(err)
	}
	member := `[{"uid": {"type": "Agent", "id": "a"}, "parents": [{"type": "Team", "id": "research"}], "attrs": {}}]`
	outsider := `[{"uid": {"type": "Agent", "id": "a"}, "parents": [], "attrs": {}}]`
	r := req("Agent:a", "read", "Doc:d", "")
	for i, state := range []string{member, outsider, member, outsider} {
		if err := ents.ReplaceJSON([]byte(state)); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			d, _ := e.Check(bg, r)
			if want := []engine.Kind{engine.Allow, engine.Deny}[i%2]; d.Kind != want {
				t.Fatalf("state %d: %v, want %v", i, d.Kind, want)
			}
		}
	}
}
