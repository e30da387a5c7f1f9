package nhi

import (
	"context"
	"fmt"
	"testing"
	"time"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/entity"
)

func agentUID(id string) cedar.EntityUID { return cedar.NewEntityUID("Agent", cedar.String(id)) }

func attr(t *testing.T, v entity.View, id, name string) cedar.Value {
	t.Helper()
	ent, ok := v.Get(agentUID(id))
	if !ok {
		t.Fatalf("agent %s not in the view", id)
	}
	val, ok := ent.Attributes.Get(cedar.String(name))
	if !ok {
		t.Fatalf("agent %s has no attribute %s", id, name)
	}
	return val
}

func TestEntitiesShowAgents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exp := e.clock.Now().Add(time.Hour)
	if _, err := e.s.Register(ctx, AgentIdentity{ID: "a", Name: "Planner", Type: AgentTypeAssistant, OwnerID: "alice",
		ExpiresAt: exp, Attributes: map[string]string{"team": "travel"}}); err != nil {
		t.Fatal(err)
	}
	v := e.s.Entities(nil).View()
	for name, want := range map[string]cedar.Value{
		"name":       cedar.String("Planner"),
		"type":       cedar.String("assistant"),
		"owner":      cedar.NewEntityUID("User", "alice"),
		"status":     cedar.String("active"),
		"team":       cedar.String("travel"),
		"created_at": cedar.NewDatetime(e.clock.Now()),
		"expires_at": cedar.NewDatetime(exp),
	} {
		if got := attr(t, v, "a", name); !got.Equal(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if _, ok := v.Get(agentUID("nobody")); ok {
		t.Error("an unknown agent is in the view")
	}
	if _, ok := v.Get(cedar.NewEntityUID("User", "a")); ok {
		t.Error("an agent id answers for another entity type")
	}
	if l, ok := v.(entity.AncestorLister); !ok || l.Ancestors(agentUID("a")) != nil {
		t.Error("agents should list no ancestors")
	}
}

// Every change of the service changes the revision, and the entity shows
// the change at once.
func TestEntitiesFollowEveryChange(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := e.s.Entities(nil)
	revs := map[uint64]string{p.View().Revision(): "start"}
	step := func(what string, f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		r := p.View().Revision()
		if prev, dup := revs[r]; dup {
			t.Fatalf("%s left the revision at %d, as after %s", what, r, prev)
		}
		revs[r] = what
	}
	suspended := StatusSuspended
	var d *Delegation
	var tok string
	step("register", func() error {
		_, err := e.s.Register(ctx, AgentIdentity{ID: "a", Type: AgentTypeService, OwnerID: "o"})
		return err
	})
	step("register b", func() error {
		_, err := e.s.Register(ctx, AgentIdentity{ID: "b", Type: AgentTypeService, OwnerID: "o"})
		return err
	})
	step("suspend", func() error { _, err := e.s.Update(ctx, "a", AgentUpdate{Status: &suspended}); return err })
	if got := attr(t, p.View(), "a", "status"); !got.Equal(cedar.String("suspended")) {
		t.Fatalf("status after suspend: %v", got)
	}
	active := StatusActive
	step("activate", func() error { _, err := e.s.Update(ctx, "a", AgentUpdate{Status: &active}); return err })
	step("rotate", func() error { _, err := e.s.RotateKeys(ctx, "a", 0); return err })
	step("delegate", func() error {
		var err error
		d, err = e.s.CreateDelegation(ctx, "a", "b", []string{"x"}, time.Time{}, nil)
		return err
	})
	step("revoke delegation", func() error { return e.s.RevokeDelegation(ctx, d.ID()) })
	tok = e.token("a", 0)
	step("revoke token", func() error { return e.s.RevokeToken(ctx, tok) })
	step("rotate node key", func() error { return e.s.RotateNodeKey(ctx, time.Hour) })
	step("revoke", func() error { return e.s.Revoke(ctx, "a") })
	if got := attr(t, p.View(), "a", "status"); !got.Equal(cedar.String("revoked")) {
		t.Fatalf("status after revoke: %v", got)
	}
}

// An agent's expiry passing is a change too, though nothing was written.
func TestEntitiesExpire(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exp := e.clock.Now().Add(time.Minute)
	if _, err := e.s.Register(ctx, AgentIdentity{ID: "a", Type: AgentTypeService, OwnerID: "o", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	e.register("b", "o")
	p := e.s.Entities(nil)
	v1 := p.View()
	e.clock.Advance(time.Minute - time.Millisecond)
	if v := p.View(); v.Revision() != v1.Revision() {
		t.Fatal("revision changed before anything expired")
	}
	e.clock.Advance(time.Millisecond)
	v2 := p.View()
	if v2.Revision() == v1.Revision() {
		t.Fatal("revision unchanged when the agent expired")
	}
	if got := attr(t, v2, "a", "status"); !got.Equal(cedar.String("expired")) {
		t.Fatalf("status of an expired agent: %v", got)
	}
	if got := attr(t, v1, "a", "status"); !got.Equal(cedar.String("active")) {
		t.Fatal("an older view changed under its reader")
	}
	if got := attr(t, v2, "b", "status"); !got.Equal(cedar.String("active")) {
		t.Fatalf("b: %v", got)
	}
	if v3 := p.View(); v3.Revision() != v2.Revision() {
		t.Fatal("revision keeps changing with nothing new expiring")
	}
}

// Enough writes to fold the overlay into the base several times; every
// agent stays visible with its latest state.
func TestEntitiesCompaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 150
	for i := range n {
		e.register(fmt.Sprintf("a%03d", i), "o")
	}
	suspended := StatusSuspended
	for i := 0; i < n; i += 3 {
		if _, err := e.s.Update(ctx, fmt.Sprintf("a%03d", i), AgentUpdate{Status: &suspended}); err != nil {
			t.Fatal(err)
		}
	}
	v := e.s.Entities(nil).View()
	for i := range n {
		want := "active"
		if i%3 == 0 {
			want = "suspended"
		}
		if got := attr(t, v, fmt.Sprintf("a%03d", i), "status"); !got.Equal(cedar.String(want)) {
			t.Fatalf("a%03d: %v, want %s", i, got, want)
		}
	}
	snap := v.(*entitySnap)
	if len(snap.overlay) > 64 {
		t.Fatalf("overlay holds %d entries; compaction did not run", len(snap.overlay))
	}
}

func TestEntitiesOverABaseProvider(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("ci-bot", "alice")
	base := engine.NewEntities()
	err := base.ReplaceJSON([]byte(`[
		{"uid": {"type": "Team", "id": "platform"}, "attrs": {}, "parents": []},
		{"uid": {"type": "Agent", "id": "ci-bot"}, "attrs": {"trust_level": 3, "status": "forged-by-base"}, "parents": [{"type": "Team", "id": "platform"}]},
		{"uid": {"type": "Agent", "id": "ghost"}, "attrs": {}, "parents": [{"type": "Team", "id": "platform"}]}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	p := e.s.Entities(base)
	v := p.View()
	if got := attr(t, v, "ci-bot", "status"); !got.Equal(cedar.String("active")) {
		t.Errorf("NHI's status should win: %v", got)
	}
	if got := attr(t, v, "ci-bot", "trust_level"); !got.Equal(cedar.Long(3)) {
		t.Errorf("base attribute lost: %v", got)
	}
	if ent, _ := v.Get(agentUID("ci-bot")); !ent.Parents.Contains(cedar.NewEntityUID("Team", "platform")) {
		t.Error("base parents lost")
	}
	if _, ok := v.Get(agentUID("ghost")); ok {
		t.Error("an agent NHI does not know is visible")
	}
	if _, ok := v.Get(cedar.NewEntityUID("Team", "platform")); !ok {
		t.Error("base entity missing")
	}
	l := v.(entity.AncestorLister)
	if got := l.Ancestors(agentUID("ghost")); got != nil {
		t.Errorf("ghost ancestors %v", got)
	}
	if got := l.Ancestors(agentUID("ci-bot")); len(got) != 1 {
		t.Errorf("ci-bot ancestors %v", got)
	}

	r1 := v.Revision()
	if p.View().Revision() != r1 {
		t.Fatal("revision changed with no change")
	}
	base.Replace(nil)
	r2 := p.View().Revision()
	if r2 == r1 {
		t.Fatal("revision unchanged after the base changed")
	}
	if err := e.s.Revoke(ctx, "ci-bot"); err != nil {
		t.Fatal(err)
	}
	if r3 := p.View().Revision(); r3 == r2 || r3 == r1 {
		t.Fatal("revision unchanged after NHI changed")
	}
}

// Through the engine: the decision cache never serves an Allow made before
// a revocation.
func TestEngineSeesRevocationAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("bot", "alice")
	eng := engine.New(engine.WithEntities(e.s.Entities(nil)))
	defer eng.Close()
	if _, err := eng.CreatePolicy(ctx, "active-agents", `permit(principal is Agent, action, resource) when { principal.status == "active" };`); err != nil {
		t.Fatal(err)
	}
	req := engine.Request{Principal: engine.Principal{Type: "Agent", ID: "bot"}, Action: entity.Ref{ID: "read"}, Resource: entity.Ref{Type: "Doc", ID: "d"}}
	for range 2 {
		if d, _ := eng.Check(ctx, req); d.Kind != engine.Allow {
			t.Fatalf("before revocation: %v", d.Kind)
		}
	}
	if err := e.s.Revoke(ctx, "bot"); err != nil {
		t.Fatal(err)
	}
	if d, _ := eng.Check(ctx, req); d.Kind != engine.Deny {
		t.Fatalf("after revocation: %v", d.Kind)
	}
}
