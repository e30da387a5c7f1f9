package nhi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRegisterAndGet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := AgentIdentity{
		ID: "spiffe://acme.example/agent/planner", Name: "Trip planner", Type: AgentTypeAssistant,
		OwnerID: "alice", ExpiresAt: e.clock.Now().Add(30 * 24 * time.Hour),
		Attributes: map[string]string{"team": "travel", "trust_level": "2"},
	}
	got, err := e.s.Register(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusActive || !got.CreatedAt.Equal(e.clock.Now()) || !got.ExpiresAt.Equal(in.ExpiresAt) {
		t.Fatalf("registered %+v", got)
	}
	got.Attributes["team"] = "changed by the caller"
	in.Attributes["team"] = "changed by the caller"

	stored, err := e.s.Get(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Attributes["team"] != "travel" || stored.Name != "Trip planner" || stored.OwnerID != "alice" || stored.Type != AgentTypeAssistant {
		t.Fatalf("stored %+v", stored)
	}
	stored.Attributes["team"] = "mutated"
	if again, _ := e.s.Get(ctx, in.ID); again.Attributes["team"] != "travel" {
		t.Fatal("Get returned the stored map itself")
	}
	if ok, err := e.s.IsRegistered(ctx, in.ID); !ok || err != nil {
		t.Fatalf("IsRegistered = %v, %v", ok, err)
	}
	if ok, err := e.s.IsRegistered(ctx, "nobody"); ok || err != nil {
		t.Fatalf("IsRegistered(unknown) = %v, %v", ok, err)
	}
	if revoked, err := e.s.IsRevoked(ctx, in.ID); revoked || err != nil {
		t.Fatalf("IsRevoked = %v, %v", revoked, err)
	}
	_, err = e.s.IsRevoked(ctx, "nobody")
	wantErr(t, "IsRevoked(unknown)", err, ErrNotFound)
	_, err = e.s.Get(ctx, "nobody")
	wantErr(t, "Get(unknown)", err, ErrNotFound)
}

func TestRegisterRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ok := func() AgentIdentity {
		return AgentIdentity{ID: "agent", Type: AgentTypeService, OwnerID: "alice"}
	}
	cases := map[string]func(a *AgentIdentity){
		"empty id":           func(a *AgentIdentity) { a.ID = "" },
		"id with a space":    func(a *AgentIdentity) { a.ID = "two words" },
		"id with a NUL":      func(a *AgentIdentity) { a.ID = "a\x00b" },
		"id with a newline":  func(a *AgentIdentity) { a.ID = "a\nlevel=error" },
		"oversize id":        func(a *AgentIdentity) { a.ID = strings.Repeat("a", MaxIDLength+1) },
		"invalid UTF-8 id":   func(a *AgentIdentity) { a.ID = "\xff\xfe" },
		"empty owner":        func(a *AgentIdentity) { a.OwnerID = "" },
		"extension id":       func(a *AgentIdentity) { a.ID = ExtensionIDPrefix + "quota" },
		"unknown type":       func(a *AgentIdentity) { a.Type = "robot" },
		"empty type":         func(a *AgentIdentity) { a.Type = "" },
		"revoked status":     func(a *AgentIdentity) { a.Status = StatusRevoked },
		"oversize name":      func(a *AgentIdentity) { a.Name = strings.Repeat("n", MaxNameLength+1) },
		"control in name":    func(a *AgentIdentity) { a.Name = "bell\a" },
		"expiry in the past": func(a *AgentIdentity) { a.ExpiresAt = e.clock.Now().Add(-time.Second) },
		"reserved attribute": func(a *AgentIdentity) { a.Attributes = map[string]string{"status": "active"} },
		"non-identifier key": func(a *AgentIdentity) { a.Attributes = map[string]string{"team-name": "x"} },
		"digit-first key":    func(a *AgentIdentity) { a.Attributes = map[string]string{"1st": "x"} },
		"empty key":          func(a *AgentIdentity) { a.Attributes = map[string]string{"": "x"} },
		"oversize value": func(a *AgentIdentity) {
			a.Attributes = map[string]string{"k": strings.Repeat("v", MaxAttributeValueLength+1)}
		},
		"too many attributes": func(a *AgentIdentity) {
			a.Attributes = map[string]string{}
			for i := range MaxAttributes + 1 {
				a.Attributes["k"+strings.Repeat("x", i)] = ""
			}
		},
	}
	for name, mutate := range cases {
		a := ok()
		mutate(&a)
		_, err := e.s.Register(ctx, a)
		wantErr(t, name, err, ErrInvalidArgument)
	}
	if got, _ := e.s.List(ctx, ListOptions{}); len(got) != 0 {
		t.Fatalf("rejected registrations stored %d agents", len(got))
	}
	if _, err := e.s.Register(ctx, ok()); err != nil {
		t.Fatalf("the valid base case: %v", err)
	}
}

func TestRegisterDuplicate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	_, err := e.s.Register(ctx, AgentIdentity{ID: "a", Type: AgentTypeService, OwnerID: "bob"})
	wantErr(t, "duplicate", err, ErrAlreadyExists)
	if err := e.s.Revoke(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Register(ctx, AgentIdentity{ID: "a", Type: AgentTypeService, OwnerID: "bob"})
	wantErr(t, "reuse of a revoked id", err, ErrAlreadyExists)
	if a, _ := e.s.Get(ctx, "a"); a.OwnerID != "alice" {
		t.Fatalf("owner changed to %q", a.OwnerID)
	}
}

func TestUpdate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	name, suspended, active := "renamed", StatusSuspended, StatusActive
	exp := e.clock.Now().Add(time.Hour)
	got, err := e.s.Update(ctx, "a", AgentUpdate{Name: &name, Status: &suspended, ExpiresAt: &exp, Attributes: map[string]string{"team": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || got.Status != StatusSuspended || !got.ExpiresAt.Equal(exp) || got.Attributes["team"] != "x" || got.OwnerID != "alice" {
		t.Fatalf("updated %+v", got)
	}
	never := time.Time{}
	if got, err = e.s.Update(ctx, "a", AgentUpdate{Status: &active, ExpiresAt: &never, Attributes: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusActive || !got.ExpiresAt.IsZero() || got.Attributes != nil || got.Name != name {
		t.Fatalf("second update %+v", got)
	}

	revoked := StatusRevoked
	_, err = e.s.Update(ctx, "a", AgentUpdate{Status: &revoked})
	wantErr(t, "status revoked through Update", err, ErrInvalidArgument)
	past := e.clock.Now().Add(-time.Minute)
	_, err = e.s.Update(ctx, "a", AgentUpdate{ExpiresAt: &past})
	wantErr(t, "past expiry", err, ErrInvalidArgument)
	_, err = e.s.Update(ctx, "a", AgentUpdate{Attributes: map[string]string{"owner": "mallory"}})
	wantErr(t, "reserved attribute", err, ErrInvalidArgument)
	_, err = e.s.Update(ctx, "nobody", AgentUpdate{Name: &name})
	wantErr(t, "unknown agent", err, ErrNotFound)

	if err := e.s.Revoke(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Update(ctx, "a", AgentUpdate{Status: &active})
	wantErr(t, "reactivating a revoked agent", err, ErrRevoked)
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	sig, err := e.s.Sign(ctx, "a", []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.Revoke(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Revoke(ctx, "a"); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	wantErr(t, "revoke unknown", e.s.Revoke(ctx, "nobody"), ErrNotFound)
	if r, err := e.s.IsRevoked(ctx, "a"); !r || err != nil {
		t.Fatalf("IsRevoked = %v, %v", r, err)
	}
	_, err = e.s.Sign(ctx, "a", []byte("after"))
	wantErr(t, "sign after revoke", err, ErrRevoked)
	wantErr(t, "verify after revoke", e.s.Verify(ctx, "a", []byte("before"), sig), ErrRevoked)
	_, err = e.s.RotateKeys(ctx, "a", 0)
	wantErr(t, "rotate after revoke", err, ErrRevoked)

	// The private keys are gone from the store; the public keys stay.
	err = e.s.store.Scan(ctx, agentKeyPrefix("a"), func(_, val []byte) error {
		var rec keyRecord
		if err := json.Unmarshal(val, &rec); err != nil {
			return err
		}
		if len(rec.SigningSealed) != 0 || len(rec.KEMSealed) != 0 || len(rec.SigningPublic) == 0 {
			return errors.New("a revoked agent's key record still holds private keys, or lost its public key")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.GetPublicKeys(ctx, "a"); err != nil {
		t.Fatalf("public keys of a revoked agent: %v", err)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"d", "b", "a", "c", "e"} {
		owner := "alice"
		if id == "b" || id == "d" {
			owner = "bob"
		}
		e.register(id, owner)
	}
	if err := e.s.Revoke(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	ids := func(opts ListOptions) string {
		got, err := e.s.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, a := range got {
			s = append(s, a.ID)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct {
		opts ListOptions
		want string
	}{
		{ListOptions{}, "a,b,c,d,e"},
		{ListOptions{OwnerID: "bob"}, "b,d"},
		{ListOptions{Status: StatusRevoked}, "c"},
		{ListOptions{Status: StatusActive, OwnerID: "alice"}, "a,e"},
		{ListOptions{Limit: 2}, "a,b"},
		{ListOptions{Limit: 2, After: "b"}, "c,d"},
		{ListOptions{After: "e"}, ""},
	} {
		if got := ids(c.opts); got != c.want {
			t.Errorf("List(%+v) = %q, want %q", c.opts, got, c.want)
		}
	}
	_, err := e.s.List(ctx, ListOptions{Limit: -1})
	wantErr(t, "negative limit", err, ErrInvalidArgument)
}

func TestClosedService(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	tok := e.token("a", 0)
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.Get(ctx, "a")
	wantErr(t, "Get", err, ErrClosed)
	_, err = e.s.ResolveToken(ctx, tok)
	wantErr(t, "ResolveToken", err, ErrClosed)
	_, err = e.s.Sign(ctx, "a", nil)
	wantErr(t, "Sign", err, ErrClosed)
	_, err = e.s.Register(ctx, AgentIdentity{ID: "b", Type: AgentTypeService, OwnerID: "x"})
	wantErr(t, "Register", err, ErrClosed)
	wantErr(t, "second Close", e.s.Close(), ErrClosed)
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{DelegationChainMaxDepth: MaxChainLinks + 1},
		{DelegationChainMaxDepth: -1},
		{DefaultTokenTTL: time.Hour, MaxTokenTTL: time.Minute},
		{DefaultDelegationTTL: 2 * time.Hour, MaxDelegationTTL: time.Hour},
		{KeyValidity: time.Second},
		{TokenCacheSize: -1},
	}
	for _, c := range bad {
		if _, err := c.resolve(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: %v, want ErrInvalidArgument", c, err)
		}
	}
	got, err := Config{}.resolve()
	if err != nil || got != DefaultConfig() {
		t.Fatalf("zero config resolved to %+v, %v", got, err)
	}
}
