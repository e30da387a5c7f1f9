package engine_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/creto-systems/creto/engine"
)

// FuzzCheck feeds hostile requests to an engine with conditional policies
// (so context and attributes get decoded): no panic, and every failure is
// an ErrInvalidRequest with a Deny.
func FuzzCheck(f *testing.F) {
	f.Add("Agent", "scout", "transfer", []byte(`{"amount": 5}`), []byte(`{"clearance": 3}`))
	f.Add("Agent", "", "read", []byte(`{"a":[1,{"__extn":{"fn":"ip","arg":"10.0.0.1"}}]}`), []byte(nil))
	f.Add("", "x", "", []byte(`[`), []byte(`{}`))
	f.Add("A::B", "x\x00", "write", []byte(`{"delegation":1}`), []byte(`{"__entity":{"type":"A","id":"b"}}`))
	e := newTestEngine(f)
	f.Fuzz(func(t *testing.T, typ, id, action string, ctx, attrs []byte) {
		r := engine.Request{
			Principal: engine.Principal{Type: typ, ID: id, Attributes: json.RawMessage(attrs)},
			Action:    engine.EntityRef{ID: action},
			Resource:  engine.EntityRef{Type: "Doc", ID: "plan"},
			Context:   json.RawMessage(ctx),
		}
		d, err := e.Check(bg, r)
		if err != nil && (!errors.Is(err, engine.ErrInvalidRequest) || d.Kind != engine.Deny) {
			t.Fatalf("error %v with decision %v", err, d.Kind)
		}
	})
}

// FuzzPolicyText: arbitrary policy text is stored or refused with
// ErrInvalidPolicy, never a panic, and a refusal leaves the store as it was.
func FuzzPolicyText(f *testing.F) {
	f.Add(`permit(principal, action, resource);`)
	f.Add(`@oversight("x") @timeout("5m") permit(principal is Agent in Team::"t", action in [Action::"a"], resource) when { context.x like "*a" };`)
	f.Add(`forbid(principal == A::"b", action, resource) unless { ip("10.0.0.1").isInRange(ip("10.0.0.0/8")) };`)
	f.Add(`permit(principal, action, resource) when { ((((((((((1)))))))))) == 1 };`)
	f.Fuzz(func(t *testing.T, text string) {
		e := engine.New()
		defer e.Close()
		_, err := e.CreatePolicy(bg, "p", text)
		if err != nil {
			if !errors.Is(err, engine.ErrInvalidPolicy) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if len(e.ListPolicies()) != 0 {
				t.Fatal("a refused policy was stored")
			}
		}
	})
}
