package hosts_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/services/nhi"
)

// nhiGuest is testdata/nhi_facts.wasm with the given manifest.
func nhiGuest(t *testing.T, manifest string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "nhi_facts.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = abi.WriteManifest(b, m); err != nil {
		t.Fatal(err)
	}
	return b
}

const nhiManifest = `{"name": "nhi-facts", "capabilities": ["nhi"]}`

// nhiEngine is an engine that permits everything, with the nhi-facts
// guest registered over mod.
func nhiEngine(t *testing.T, mod hosts.NHI) *engine.Engine {
	t.Helper()
	ctx := context.Background()
	e := engine.New(engine.WithHostModules(mod))
	t.Cleanup(func() { e.Close() })
	if _, err := e.CreatePolicy(ctx, "all", `permit (principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RegisterExtension(ctx, nhiGuest(t, nhiManifest), engine.ExtensionConfig{Grants: []string{"nhi"}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// facts returns what the guest reported about a principal: its deny
// reason, or "" when it let the request through.
func facts(t *testing.T, e *engine.Engine, typ, id string) string {
	t.Helper()
	d, err := e.Check(context.Background(), engine.Request{
		Principal: engine.Principal{Type: typ, ID: id},
		Action:    engine.EntityRef{ID: "read"},
		Resource:  engine.EntityRef{Type: "Doc", ID: "d"},
	})
	if err != nil {
		t.Fatal(err)
	}
	switch d.Kind {
	case engine.Allow:
		return ""
	case engine.Deny:
		if d.PolicyID != "nhi" {
			t.Fatalf("denied by %q (%s), not by the guest", d.PolicyID, d.Reason)
		}
		return d.Reason
	}
	t.Fatalf("decision %v", d.Kind)
	return ""
}

func TestNHIHostReportsTheRegistrysRecord(t *testing.T) {
	ctx := context.Background()
	svc, err := nhi.Open(ctx, t.TempDir(), nhi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if _, err := svc.Register(ctx, nhi.AgentIdentity{ID: "payments-bot", Type: nhi.AgentTypeService, OwnerID: "alice",
		ExpiresAt: expires, Attributes: map[string]string{"team": "payments"}}); err != nil {
		t.Fatal(err)
	}
	var now atomic.Pointer[time.Time]
	t0 := time.Now()
	now.Store(&t0)
	e := nhiEngine(t, hosts.NHI{Agents: svc, Now: func() time.Time { return *now.Load() }})

	want := "registered=1 revoked=0 status=1 owner=alice type=service team=payments nope=-2 ownerlen=5"
	if got := facts(t, e, "Agent", "payments-bot"); got != want {
		t.Fatalf("active agent:\n got %q\nwant %q", got, want)
	}
	// Attributes a caller asserts in the request change nothing: the
	// guest reads the registry.
	d, err := e.Check(ctx, engine.Request{
		Principal: engine.Principal{Type: "Agent", ID: "payments-bot", Attributes: []byte(`{"team": "treasury"}`)},
		Action:    engine.EntityRef{ID: "read"}, Resource: engine.EntityRef{Type: "Doc", ID: "d"},
	})
	if err != nil || d.Reason != want {
		t.Fatalf("with asserted attributes: %v %q", err, d.Reason)
	}
	unknown := "registered=0 revoked=-2 status=-2 owner=-2 type=-2 team=-2 nope=-2 ownerlen=-2"
	if got := facts(t, e, "Agent", "ghost"); got != unknown {
		t.Fatalf("unknown agent:\n got %q\nwant %q", got, unknown)
	}
	tooLong := "registered=-4 revoked=-4 status=-4 owner=-4 type=-4 team=-4 nope=-4 ownerlen=-4"
	if got := facts(t, e, "Agent", strings.Repeat("a", nhi.MaxIDLength+1)); got != tooLong {
		t.Fatalf("oversize id:\n got %q\nwant %q", got, tooLong)
	}
	if got := facts(t, e, "User", "payments-bot"); got != "" {
		t.Fatalf("the guest skips non-agents, got %q", got)
	}

	suspended, active := nhi.StatusSuspended, nhi.StatusActive
	if _, err := svc.Update(ctx, "payments-bot", nhi.AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if got := facts(t, e, "Agent", "payments-bot"); !strings.Contains(got, " status=2 ") {
		t.Fatalf("suspended: %q", got)
	}
	if _, err := svc.Update(ctx, "payments-bot", nhi.AgentUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	later := expires.Add(time.Second)
	now.Store(&later)
	if got := facts(t, e, "Agent", "payments-bot"); !strings.Contains(got, " status=4 ") {
		t.Fatalf("past its expiry: %q", got)
	}
	if err := svc.Revoke(ctx, "payments-bot"); err != nil {
		t.Fatal(err)
	}
	revoked := "registered=1 revoked=1 status=3 owner=alice type=service team=payments nope=-2 ownerlen=5"
	if got := facts(t, e, "Agent", "payments-bot"); got != revoked {
		t.Fatalf("revoked:\n got %q\nwant %q", got, revoked)
	}

	// A closed registry cannot answer.
	svc.Close()
	closed := "registered=-5 revoked=-5 status=-5 owner=-5 type=-5 team=-5 nope=-5 ownerlen=-5"
	if got := facts(t, e, "Agent", "payments-bot"); got != closed {
		t.Fatalf("closed registry:\n got %q\nwant %q", got, closed)
	}
}

func TestNHIHostWithoutARegistryIsUnavailable(t *testing.T) {
	e := nhiEngine(t, hosts.NHI{})
	if got := facts(t, e, "Agent", "a"); got != "registered=-5 revoked=-5 status=-5 owner=-5 type=-5 team=-5 nope=-5 ownerlen=-5" {
		t.Fatalf("got %q", got)
	}
}

func TestNHICapabilityMustBeGranted(t *testing.T) {
	ctx := context.Background()
	e := engine.New(engine.WithHostModules(hosts.NHI{}))
	defer e.Close()
	// Requested, not granted.
	_, err := e.RegisterExtension(ctx, nhiGuest(t, nhiManifest), engine.ExtensionConfig{Grants: []string{"state", "time"}})
	if !errors.Is(err, engine.ErrImportNotGranted) {
		t.Fatalf("ungranted: %v", err)
	}
	// Imported without being requested, even with the grant.
	_, err = e.RegisterExtension(ctx, nhiGuest(t, `{"name": "nhi-facts"}`), engine.ExtensionConfig{Grants: []string{"nhi"}})
	if !errors.Is(err, engine.ErrImportNotGranted) {
		t.Fatalf("unrequested: %v", err)
	}
	if n := len(e.ListExtensions()); n != 0 {
		t.Fatalf("%d extensions registered after refusals", n)
	}
	// An engine that was not given the module cannot run the guest.
	bare := engine.New()
	defer bare.Close()
	_, err = bare.RegisterExtension(ctx, nhiGuest(t, nhiManifest), engine.ExtensionConfig{Grants: []string{"nhi"}})
	if !errors.Is(err, engine.ErrUnknownImport) {
		t.Fatalf("engine without the NHI module: %v", err)
	}
}
