package nhi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) HandleEvent(_ context.Context, e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

func (l *eventLog) take() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.ev
	l.ev = nil
	return out
}

// TestEventsForEveryCommittedChange: every change is reported once, after
// it is committed, with the facts an audit record needs; failed changes
// and no-ops report nothing; no event carries a token.
func TestEventsForEveryCommittedChange(t *testing.T) {
	ctx := context.Background()
	events := &eventLog{}
	e := &testEnv{t: t, dir: t.TempDir(), clock: newTestClock(), cfg: Config{Events: events}}
	e.open()
	var seen []Event
	want := func(kinds ...EventKind) []Event {
		t.Helper()
		got := events.take()
		seen = append(seen, got...)
		if len(got) != len(kinds) {
			t.Fatalf("events %+v, want kinds %v", got, kinds)
		}
		for i, k := range kinds {
			if got[i].Kind != k || !got[i].At.Equal(e.clock.Now()) {
				t.Fatalf("event %d: %+v, want %s at %v", i, got[i], k, e.clock.Now())
			}
		}
		return got
	}

	e.register("planner", "alice")
	e.register("mailer", "ops")
	ev := want(EventAgentRegistered, EventAgentRegistered)
	if ev[0].AgentID != "planner" || ev[0].OwnerID != "alice" || ev[0].Type != AgentTypeAutonomous || ev[0].KeyVersion != 1 {
		t.Fatalf("registered: %+v", ev[0])
	}
	if _, err := e.s.Register(ctx, AgentIdentity{ID: "planner", Type: AgentTypeService, OwnerID: "x"}); err == nil {
		t.Fatal("duplicate registered")
	}
	want() // a failed change reports nothing

	name := "Planner"
	suspended := StatusSuspended
	if _, err := e.s.Update(ctx, "planner", AgentUpdate{Name: &name, Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if ev := want(EventAgentUpdated); ev[0].Status != StatusSuspended {
		t.Fatalf("updated: %+v", ev[0])
	}
	active := StatusActive
	if _, err := e.s.Update(ctx, "planner", AgentUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	want(EventAgentUpdated)

	pk, err := e.s.RotateKeys(ctx, "planner", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ev := want(EventKeysRotated); ev[0].KeyVersion != pk.Version || ev[0].KeyVersion != 2 {
		t.Fatalf("rotated: %+v", ev[0])
	}
	if err := e.s.RotateNodeKey(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ev := want(EventNodeKeyRotated); ev[0].KeyVersion != 2 || ev[0].AgentID != "" {
		t.Fatalf("node key: %+v", ev[0])
	}

	tok := e.token("mailer", 10*time.Minute)
	issued := want(EventTokenIssued)[0]
	if issued.AgentID != "mailer" || len(issued.TokenID) != 32 || !issued.ExpiresAt.Equal(e.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("issued: %+v", issued)
	}
	if err := e.s.RevokeToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if ev := want(EventTokenRevoked); ev[0].TokenID != issued.TokenID || ev[0].AgentID != "mailer" {
		t.Fatalf("token revoked: %+v", ev[0])
	}
	if err := e.s.RevokeToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	want() // revoking again changes nothing

	d, err := e.s.CreateDelegation(ctx, "planner", "mailer", []string{"send_email"}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	created := want(EventDelegationCreated)[0]
	if created.AgentID != "planner" || created.DelegateeID != "mailer" || created.DelegationID != d.ID().String() ||
		fmt.Sprint(created.Permissions) != "[send_email]" || !created.ExpiresAt.Equal(d.ExpiresAt()) {
		t.Fatalf("delegation created: %+v", created)
	}
	e.register("helper", "ops")
	want(EventAgentRegistered)
	id := d.ID()
	if _, err := e.s.CreateDelegation(ctx, "mailer", "helper", []string{"send_email"}, time.Time{}, &id); err != nil {
		t.Fatal(err)
	}
	want(EventDelegationCreated)
	if err := e.s.RevokeDelegation(ctx, d.ID()); err != nil {
		t.Fatal(err)
	}
	if ev := want(EventDelegationRevoked); ev[0].Revoked != 2 || ev[0].DelegationID != d.ID().String() || ev[0].AgentID != "planner" {
		t.Fatalf("delegation revoked: %+v", ev[0])
	}
	if err := e.s.RevokeDelegation(ctx, d.ID()); err != nil {
		t.Fatal(err)
	}
	want()

	if err := e.s.Revoke(ctx, "mailer"); err != nil {
		t.Fatal(err)
	}
	want(EventAgentRevoked)
	if err := e.s.Revoke(ctx, "mailer"); err != nil {
		t.Fatal(err)
	}
	want()

	// Tokens never travel in events, not even in part.
	if len(seen) != 13 {
		t.Fatalf("%d events in all", len(seen))
	}
	for _, x := range seen {
		if strings.Contains(fmt.Sprintf("%+v", x), tok[:16]) {
			t.Fatalf("an event carries the token: %+v", x)
		}
	}
}
