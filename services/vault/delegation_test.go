package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// delegationFixture: agent "a" owns two secrets and delegates.
func delegationFixture(t *testing.T, cfg Config) (*fixture, SecretRef, SecretRef) {
	f := newFixture(t, cfg)
	x, y := ref("agents/a/api", "X"), ref("agents/a/api", "Y")
	f.create("a", x, "value-x")
	f.create("a", y, "value-y")
	return f, x, y
}

func (f *fixture) delegate(req CreateDelegationRequest) *Delegation {
	f.t.Helper()
	d, err := f.svc.CreateDelegation(bg, "a", req)
	if err != nil {
		f.t.Fatalf("delegate: %v", err)
	}
	return d
}

func (f *fixture) fetch(requester string, req GetDelegatedSecretsRequest) (*DelegatedSecretsResponse, error) {
	resp, err := f.svc.GetDelegatedSecrets(bg, requester, req)
	if err == nil {
		f.t.Cleanup(resp.Destroy)
	}
	return resp, err
}

func TestDelegatedFetch(t *testing.T) {
	f, x, y := delegationFixture(t, Config{})
	d := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x, y}, TTL: time.Hour,
		Restrictions: DelegationRestrictions{MaxUses: 3}})
	if d.Status != DelegationActive || d.Delegator != "a" || d.Delegatee != "b" || !d.Restrictions.MemoryOnly || len(d.ID) != 32 ||
		!d.ExpiresAt.Equal(d.CreatedAt.Add(time.Hour)) {
		t.Fatalf("delegation %+v", d)
	}
	resp, err := f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []SecretRef{y, x}, TTL: 10 * time.Minute})
	must(t, err)
	if resp.DelegationID != d.ID || len(resp.Secrets) != 2 || string(resp.Secrets[0].Value.Expose()) != "value-y" || string(resp.Secrets[1].Value.Expose()) != "value-x" {
		t.Fatalf("response %+v", resp)
	}
	for _, s := range resp.Secrets {
		if s.Restrictions.BoundSandbox != "sb-1" || !s.Restrictions.MemoryOnly || s.Restrictions.MaxUses != 3 || s.Version != 1 ||
			!s.ExpiresAt.Equal(resp.ExpiresAt) || resp.ExpiresAt.Sub(d.CreatedAt) > 11*time.Minute {
			t.Fatalf("secret %+v (expires %v)", s, resp.ExpiresAt)
		}
	}
	// b has no direct access: only through the delegation.
	_, err = f.get("b", x)
	wantErr(t, err, ErrAccessDenied)

	// The delegated TTL is cut to the delegation's expiry.
	f.clock.advance(55 * time.Minute)
	resp, err = f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []SecretRef{x}, TTL: time.Hour})
	must(t, err)
	if !resp.ExpiresAt.Equal(d.ExpiresAt) {
		t.Fatalf("expires %v, delegation %v", resp.ExpiresAt, d.ExpiresAt)
	}
	// Rotation propagates: a fetch gets the current version.
	_, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: x, Value: val("value-x2")})
	must(t, err)
	resp, err = f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb-2", Refs: []SecretRef{x}})
	must(t, err)
	if string(resp.Secrets[0].Value.Expose()) != "value-x2" || resp.Secrets[0].Version != 2 {
		t.Fatalf("%+v", resp.Secrets[0])
	}
	_, err = f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb-2", Refs: []SecretRef{x}})
	wantErr(t, err, ErrDelegationExhausted)
	got, err := f.svc.GetDelegation(bg, "b", d.ID)
	must(t, err)
	if got.Status != DelegationExhausted || got.Uses != 3 {
		t.Fatalf("after three uses: %+v", got)
	}
}

// Looking a delegation up, as delegator or delegatee, never spends a use
// (HashiCorp Vault's lookup-consumes-a-use pitfall).
func TestLookupIsNotAUse(t *testing.T) {
	f, x, _ := delegationFixture(t, Config{})
	d := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{SingleUse: true}})
	for range 5 {
		for _, who := range []string{"a", "b"} {
			got, err := f.svc.GetDelegation(bg, who, d.ID)
			must(t, err)
			if got.Uses != 0 || got.Status != DelegationActive || got.Restrictions.MaxUses != 1 {
				t.Fatalf("%+v", got)
			}
		}
	}
	_, err := f.svc.GetDelegation(bg, "c", d.ID)
	wantErr(t, err, ErrAccessDenied)
	if _, err := f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}}); err != nil {
		t.Fatalf("the single use was spent by lookups: %v", err)
	}
}

func TestDelegationRefusals(t *testing.T) {
	f, x, y := delegationFixture(t, Config{})
	f.create("c", ref("agents/c", "Z"), "value-z")
	bound := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{BoundSandbox: "sb-1"}})
	req := func(sandbox string, refs ...SecretRef) GetDelegatedSecretsRequest {
		return GetDelegatedSecretsRequest{SandboxID: sandbox, Refs: refs}
	}
	for name, tc := range map[string]struct {
		requester string
		req       GetDelegatedSecretsRequest
		want      error
	}{
		"wrong sandbox":       {"b", req("sb-2", x), ErrAccessDenied},
		"ref not covered":     {"b", req("sb-1", x, y), ErrAccessDenied},
		"wrong delegatee":     {"c", req("sb-1", x), ErrAccessDenied},
		"no delegation":       {"d", req("sb-1", x), ErrAccessDenied},
		"named, wrong agent":  {"c", GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []SecretRef{x}, DelegationID: bound.ID}, ErrAccessDenied},
		"named, unknown":      {"b", GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []SecretRef{x}, DelegationID: "00112233445566778899aabbccddeeff"}, ErrDelegationNotFound},
		"named, malformed id": {"b", GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []SecretRef{x}, DelegationID: "nope"}, ErrInvalidArgument},
		"no sandbox":          {"b", req("", x), ErrInvalidArgument},
		"TTL over max":        {"b", GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []SecretRef{x}, TTL: 25 * time.Hour}, ErrInvalidArgument},
		"negative TTL":        {"b", GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []SecretRef{x}, TTL: -1}, ErrInvalidArgument},
	} {
		resp, err := f.fetch(tc.requester, tc.req)
		if resp != nil || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	got, _ := f.svc.GetDelegation(bg, "a", bound.ID)
	if got.Uses != 0 {
		t.Fatalf("refused fetches spent %d uses", got.Uses)
	}
	// Only a secret's owner (or a grant) may delegate it; delegations
	// themselves are validated.
	for name, r := range map[string]CreateDelegationRequest{
		"someone else's secret": {Delegatee: "b", Secrets: []SecretRef{ref("agents/c", "Z")}},
		"missing secret":        {Delegatee: "b", Secrets: []SecretRef{ref("agents/a/api", "NONE")}},
		"TTL over max":          {Delegatee: "b", Secrets: []SecretRef{x}, TTL: 48 * time.Hour},
		"no secrets":            {Delegatee: "b"},
		"bad delegatee":         {Delegatee: "b b", Secrets: []SecretRef{x}},
		"negative max uses":     {Delegatee: "b", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{MaxUses: -1}},
		"single use, 2 uses":    {Delegatee: "b", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{SingleUse: true, MaxUses: 2}},
		"bad sandbox":           {Delegatee: "b", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{BoundSandbox: "sb\n"}},
	} {
		if _, err := f.svc.CreateDelegation(bg, "a", r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_, err := f.svc.CreateDelegation(bg, "a", CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{ref("agents/a/api", "NONE")}})
	wantErr(t, err, ErrNotFound)
	_, err = f.svc.CreateDelegation(bg, "a", CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{ref("agents/c", "Z")}})
	wantErr(t, err, ErrAccessDenied)
}

func TestDelegationExpiredAndRevoked(t *testing.T) {
	f, x, _ := delegationFixture(t, Config{})
	// Seed §11.4: a delegation with a 1 ms TTL, fetched after it expired.
	d := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, TTL: time.Millisecond})
	f.clock.advance(10 * time.Millisecond)
	_, err := f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb-new", Refs: []SecretRef{x}, TTL: time.Minute})
	wantErr(t, err, ErrDelegationExpired)
	got, _ := f.svc.GetDelegation(bg, "b", d.ID)
	if got.Status != DelegationExpired {
		t.Fatalf("status %v", got.Status)
	}

	d = f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}})
	wantErr(t, f.svc.RevokeDelegation(bg, "b", d.ID), ErrAccessDenied) // the delegatee cannot
	if _, err := f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}}); err != nil {
		t.Fatal(err)
	}
	must(t, f.svc.RevokeDelegation(bg, "a", d.ID))
	must(t, f.svc.RevokeDelegation(bg, "a", d.ID)) // twice is a no-op
	_, err = f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}, DelegationID: d.ID})
	wantErr(t, err, ErrDelegationRevoked)
	got, _ = f.svc.GetDelegation(bg, "a", d.ID)
	if got.Status != DelegationRevoked || got.RevokedAt.IsZero() || got.Uses != 1 {
		t.Fatalf("%+v", got)
	}
	wantErr(t, f.svc.RevokeDelegation(bg, "a", "00112233445566778899aabbccddeeff"), ErrDelegationNotFound)
	wantErr(t, f.svc.RevokeDelegation(bg, "a", "xyz"), ErrInvalidArgument)

	// A delegation never outlives its delegator's access: a delegates a
	// platform secret under a grant, and the grant is withdrawn.
	shared := ref("shared", "S")
	var granted atomic.Bool
	granted.Store(true)
	grant := AuthorizerFunc(func(_ context.Context, r AccessRequest) error {
		if (r.Agent == "platform" && r.Access == AccessWrite) || (r.Agent == "a" && r.Ref == shared && r.Access == AccessDelegate && granted.Load()) {
			return nil
		}
		return ErrAccessDenied
	})
	g := newFixture(t, Config{Authorizer: grant})
	_, err = g.svc.CreateSecret(bg, "platform", CreateSecretRequest{Ref: shared, Value: val("one"), Metadata: SecretMetadata{Type: TypeGeneric}})
	must(t, err)
	d2, err := g.svc.CreateDelegation(bg, "a", CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{shared}})
	must(t, err)
	fetch := GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{shared}, DelegationID: d2.ID}
	if _, err := g.fetch("b", fetch); err != nil {
		t.Fatal(err)
	}
	granted.Store(false)
	_, err = g.fetch("b", fetch)
	wantErr(t, err, ErrAccessDenied)
}

// Seed §11.2: the runtime fetching an agent's own secrets gets them bound
// to the sandbox and memory-only, under a delegation record it can revoke
// at cleanup.
func TestDirectFetchContract(t *testing.T) {
	no := false
	f, x, y := delegationFixture(t, Config{RequireMemoryOnly: &no})
	resp, err := f.fetch("a", GetDelegatedSecretsRequest{SandboxID: "sb-9", Refs: []SecretRef{x, y}, TTL: time.Hour})
	must(t, err)
	if len(resp.Secrets) != 2 || string(resp.Secrets[1].Value.Expose()) != "value-y" {
		t.Fatalf("%+v", resp)
	}
	for _, s := range resp.Secrets {
		if !s.Restrictions.MemoryOnly || s.Restrictions.BoundSandbox != "sb-9" {
			t.Fatalf("restrictions %+v", s.Restrictions)
		}
	}
	d, err := f.svc.GetDelegation(bg, "a", resp.DelegationID)
	must(t, err)
	if d.Delegator != "a" || d.Delegatee != "a" || d.Uses != 1 || d.Restrictions.BoundSandbox != "sb-9" || !d.ExpiresAt.Equal(resp.ExpiresAt) {
		t.Fatalf("record %+v", d)
	}
	must(t, f.svc.RevokeDelegation(bg, "a", resp.DelegationID))
	// Direct fetch of a missing secret says so.
	_, err = f.fetch("a", GetDelegatedSecretsRequest{SandboxID: "sb-9", Refs: []SecretRef{ref("agents/a/api", "NONE")}})
	wantErr(t, err, ErrNotFound)
	// Without require_memory_only a delegation may allow disk.
	dd := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}})
	if dd.Restrictions.MemoryOnly {
		t.Fatal("memory_only forced with require_memory_only off")
	}
	// With it (the default) every delegation is memory-only.
	g, gx, _ := delegationFixture(t, Config{})
	if d := g.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{gx}}); !d.Restrictions.MemoryOnly {
		t.Fatal("require_memory_only not enforced")
	}
}

// Many goroutines race for a use-limited delegation: exactly max_uses of
// them get the value, the rest ErrDelegationExhausted. Run with -race.
func TestUseLimitsUnderConcurrency(t *testing.T) {
	f, x, _ := delegationFixture(t, Config{})
	for _, tc := range []struct {
		name string
		rs   DelegationRestrictions
		want int32
	}{
		{"single use", DelegationRestrictions{SingleUse: true}, 1},
		{"max uses 5", DelegationRestrictions{MaxUses: 5}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Several rounds: a lost update needs an unlucky interleaving,
			// and each round is another chance for one.
			for range 4 {
				raceDelegation(t, f, x, tc.rs, tc.want)
			}
		})
	}
	// Without a named delegation, racers spread over the usable ones:
	// two single-use delegations serve exactly two.
	for range 2 {
		f.delegate(CreateDelegationRequest{Delegatee: "pool", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{SingleUse: true}})
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			resp, err := f.svc.GetDelegatedSecrets(bg, "pool", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}})
			if err == nil {
				resp.Destroy()
				ok.Add(1)
			} else if !errors.Is(err, ErrDelegationExhausted) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 2 {
		t.Fatalf("%d fetches from two single-use delegations", ok.Load())
	}
}

func raceDelegation(t *testing.T, f *fixture, x SecretRef, rs DelegationRestrictions, want int32) {
	d := f.delegate(CreateDelegationRequest{Delegatee: "racer", Secrets: []SecretRef{x}, Restrictions: rs})
	var ok, exhausted atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 24 {
		wg.Go(func() {
			<-start
			resp, err := f.svc.GetDelegatedSecrets(bg, "racer", GetDelegatedSecretsRequest{SandboxID: fmt.Sprint("sb-", i), Refs: []SecretRef{x}, DelegationID: d.ID})
			switch {
			case err == nil:
				if string(resp.Secrets[0].Value.Expose()) != "value-x" {
					t.Error("wrong value")
				}
				resp.Destroy()
				ok.Add(1)
			case errors.Is(err, ErrDelegationExhausted):
				exhausted.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != want || exhausted.Load() != 24-want {
		t.Fatalf("%d fetches succeeded, %d exhausted; want %d", ok.Load(), exhausted.Load(), want)
	}
	got, _ := f.svc.GetDelegation(bg, "a", d.ID)
	if got.Uses != want || got.Status != DelegationExhausted {
		t.Fatalf("%+v", got)
	}
}

// Uses are durable before values are returned: after a restart a spent
// delegation stays spent, and a partly used one keeps its count.
func TestUseCountsSurviveRestart(t *testing.T) {
	f, x, _ := delegationFixture(t, Config{})
	single := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{SingleUse: true}})
	three := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{MaxUses: 3}})
	for _, id := range []string{single.ID, three.ID, three.ID} {
		_, err := f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}, DelegationID: id})
		must(t, err)
	}
	f.restart()
	_, err := f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}, DelegationID: single.ID})
	wantErr(t, err, ErrDelegationExhausted)
	_, err = f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}, DelegationID: three.ID})
	must(t, err)
	_, err = f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}, DelegationID: three.ID})
	wantErr(t, err, ErrDelegationExhausted)
}

func TestTamperedDelegationIsUnusable(t *testing.T) {
	f, x, _ := delegationFixture(t, Config{})
	d := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{SingleUse: true}})
	id, _ := parseDelegationID(d.ID)
	key := delegationKey(id)
	raw := f.dump(string(key))[string(key)]
	raw[len(raw)-3] ^= 1 // e.g. an attempt to reset the use count
	f.close()
	f.open()
	setRaw(t, f, key, raw)
	f.unseal()
	_, err := f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}, DelegationID: d.ID})
	wantErr(t, err, ErrDelegationNotFound)
}

// Expired delegations are pruned after the retention period.
func TestDelegationRetention(t *testing.T) {
	f, x, _ := delegationFixture(t, Config{DelegationRetention: time.Hour})
	d := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, TTL: time.Minute})
	keep := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, TTL: 3 * time.Hour})
	f.clock.advance(30 * time.Minute)
	f.clock.runScheduler()
	_, err := f.svc.GetDelegation(bg, "a", d.ID)
	must(t, err) // expired, but within retention
	f.clock.advance(time.Hour)
	f.clock.runScheduler()
	_, err = f.svc.GetDelegation(bg, "a", d.ID)
	wantErr(t, err, ErrDelegationNotFound)
	_, err = f.svc.GetDelegation(bg, "a", keep.ID)
	must(t, err)
	f.restart()
	_, err = f.svc.GetDelegation(bg, "a", d.ID)
	wantErr(t, err, ErrDelegationNotFound)
}

// A fetch that loses its first delegation to a racer and retries on
// another gets the second delegation's expiry, not the first's.
func TestRetryTakesTheNextDelegationsExpiry(t *testing.T) {
	f, x, _ := delegationFixture(t, Config{})
	soon := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, TTL: 10 * time.Minute, Restrictions: DelegationRestrictions{SingleUse: true}})
	later := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, TTL: 2 * time.Hour})
	req := GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}}
	fe := &fetch{s: f.svc, requester: "b", req: req, now: f.clock.now()}
	fe.ttlEnd = fe.now.Add(time.Hour).UnixNano()
	fe.expires = fe.ttlEnd
	f.svc.life.RLock()
	defer f.svc.life.RUnlock()
	d, err := fe.choose(delegationID{})
	must(t, err)
	seen := d.snapshot()
	if seen.id.String() != soon.ID {
		t.Fatal("the delegation expiring first was not chosen")
	}
	// A racer spends the single use between choose and use.
	spent := *seen
	spent.uses = 1
	d.mu.Lock()
	d.rec = &spent
	d.mu.Unlock()
	if _, retry, err := fe.use(bg, d, seen); !retry || err != nil {
		t.Fatalf("retry %v, %v", retry, err)
	}
	d, err = fe.choose(delegationID{})
	must(t, err)
	resp, retry, err := fe.use(bg, d, d.snapshot())
	must(t, err)
	defer resp.Destroy()
	if retry || resp.DelegationID != later.ID || !resp.ExpiresAt.Equal(unixTime(fe.ttlEnd)) {
		t.Fatalf("delegation %s, expires %v, want %v", resp.DelegationID, resp.ExpiresAt, unixTime(fe.ttlEnd))
	}
}
