package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/creto-systems/creto/engine"
)

// recorder keeps what it is told, copying the fields it keeps as an
// observer must.
type recorder struct {
	mu        sync.Mutex
	decisions []observed
	failures  []engine.ExtensionError
}

type observed struct {
	principal, action, resource, trace string
	kind                               engine.Kind
	policy                             string
	cached                             bool
	err                                error
}

func (r *recorder) Decided(_ context.Context, req engine.Request, d engine.Decision, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions = append(r.decisions, observed{req.Principal.ID, req.Action.ID, req.Resource.ID, req.TraceID, d.Kind, d.PolicyID, d.Cached, err})
}

func (r *recorder) ExtensionFailed(_ context.Context, _ engine.Request, err engine.ExtensionError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, err)
}

func TestObserverSeesEveryDecision(t *testing.T) {
	rec := &recorder{}
	e := newTestEngine(t, engine.WithObserver(rec))
	allow := req("Agent:scout", "read", "Doc:plan", "")
	allow.TraceID = "t-1"
	for range 2 { // the second is served from the cache
		if d, err := e.Check(bg, allow); err != nil || d.Kind != engine.Allow {
			t.Fatal(d.Kind, err)
		}
	}
	if d, _ := e.Check(bg, req("Agent:rogue", "read", "Doc:plan", "")); d.Kind != engine.Deny {
		t.Fatal(d.Kind)
	}
	bad := req("Agent:scout", "read", "Doc:plan", `{"delegation": 1}`)
	if _, err := e.Check(bg, bad); err == nil {
		t.Fatal("reserved context key accepted")
	}
	if _, err := e.CheckBatch(bg, []engine.Request{allow, allow, allow}); err != nil {
		t.Fatal(err)
	}
	got := rec.decisions
	if len(got) != 7 {
		t.Fatalf("%d decisions observed, want 7", len(got))
	}
	want := []observed{
		{"scout", "read", "plan", "t-1", engine.Allow, "", false, nil},
		{"scout", "read", "plan", "t-1", engine.Allow, "", true, nil},
		{"rogue", "read", "plan", "", engine.Deny, "revoked", false, nil},
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("decision %d: got %+v, want %+v", i, got[i], w)
		}
	}
	if got[3].kind != engine.Deny || !errors.Is(got[3].err, engine.ErrInvalidRequest) {
		t.Errorf("invalid request observed as %+v", got[3])
	}
}

func TestObserverSeesExtensionFailures(t *testing.T) {
	rec := &recorder{}
	e := engine.New(engine.WithObserver(rec))
	t.Cleanup(func() { e.Close() })
	if _, err := e.ApplyPolicies(bg, engine.Change{Op: engine.OpCreate, ID: "all", Text: `permit(principal, action, resource);`}); err != nil {
		t.Fatal(err)
	}
	register(t, e, guest(t, "trap", `{"name": "flaky", "on_error": "skip"}`), engine.ExtensionConfig{})
	d, err := e.Check(bg, req("Agent:a", "read", "Doc:d", ""))
	if err != nil || d.Kind != engine.Allow {
		t.Fatalf("on_error skip: %v %v", d.Kind, err)
	}
	if len(rec.failures) != 1 || rec.failures[0].Extension != "flaky" || rec.failures[0].Class != engine.FailTrap {
		t.Fatalf("failures observed: %+v", rec.failures)
	}
	if len(rec.decisions) != 1 || rec.decisions[0].kind != engine.Allow {
		t.Fatalf("decisions observed: %+v", rec.decisions)
	}
}

type nopObserver struct{}

func (nopObserver) Decided(context.Context, engine.Request, engine.Decision, error) {}
func (nopObserver) ExtensionFailed(context.Context, engine.Request, engine.ExtensionError) {
}

// TestObserverAllocatesNothing: a cached check allocates nothing with or
// without an observer; handing it the request and decision copies values.
func TestObserverAllocatesNothing(t *testing.T) {
	for name, opts := range map[string][]engine.Option{"unset": nil, "set": {engine.WithObserver(nopObserver{})}} {
		e := newTestEngine(t, opts...)
		r := req("Agent:scout", "read", "Doc:plan", "")
		if d, _ := e.Check(bg, r); d.Kind != engine.Allow {
			t.Fatal(d.Kind)
		}
		if n := testing.AllocsPerRun(200, func() { e.Check(bg, r) }); n != 0 {
			t.Errorf("%s: %v allocations per cached check", name, n)
		}
	}
}
