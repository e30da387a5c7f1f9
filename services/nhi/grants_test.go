package nhi

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// grantEntries lists the grant index as "delegatee/delegation id".
func grantEntries(t *testing.T, e *testEnv) []string {
	t.Helper()
	var out []string
	err := e.s.store.Scan(context.Background(), []byte(prefixGrantIndex), func(key, _ []byte) error {
		out = append(out, string(key[len(prefixGrantIndex):]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func entry(delegatee string, d *Delegation) string { return delegatee + "\x00" + d.ID().String() }

func TestFindGrant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"owner", "supervisor", "approver", "stranger"} {
		e.register(id, "alice")
	}
	direct := e.delegate("owner", "approver", []string{"memory:read"}, nil)
	top := e.delegate("owner", "supervisor", []string{"memory:read", "memory:write"}, nil)
	below := e.delegate("supervisor", "approver", []string{"memory:write"}, top)

	c, err := e.s.FindGrant(ctx, "approver", "owner", "memory:read")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Verified() || c.Root() != "owner" || c.Principal() != "approver" || c.Links()[len(c.Links())-1].ID() != direct.ID() {
		t.Fatalf("read grant: root %q principal %q verified %v", c.Root(), c.Principal(), c.Verified())
	}
	// Through an intermediate agent, the origin is still the owner.
	c, err = e.s.FindGrant(ctx, "approver", "owner", "memory:write")
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Links(); len(l) != 2 || l[1].ID() != below.ID() || c.Root() != "owner" {
		t.Fatalf("write grant through the supervisor: %d links, root %q", len(l), c.Root())
	}
	// The supervisor's own link is its grant; the intermediate delegator is
	// not an origin.
	if _, err := e.s.FindGrant(ctx, "approver", "supervisor", "memory:write"); err == nil {
		t.Fatal("the supervisor is not the origin of any chain to the approver")
	} else {
		wantErr(t, "intermediate as origin", err, ErrNotFound)
	}
	for _, tc := range []struct{ delegatee, delegator, perm string }{
		{"approver", "owner", "memory:delete"}, // not granted
		{"stranger", "owner", "memory:read"},   // holds nothing
		{"owner", "approver", "memory:read"},   // grants run one way
		{"approver", "stranger", "memory:read"},
	} {
		_, err := e.s.FindGrant(ctx, tc.delegatee, tc.delegator, tc.perm)
		wantErr(t, tc.delegatee+" from "+tc.delegator+" "+tc.perm, err, ErrNotFound)
	}
	for _, tc := range []struct{ delegatee, delegator, perm string }{
		{"", "owner", "memory:read"},
		{"approver", "has space", "memory:read"},
		{"approver", "owner", ""},
		{"approver", "owner", "two words"},
		{string(make([]byte, MaxIDLength+1)), "owner", "memory:read"},
	} {
		_, err := e.s.FindGrant(ctx, tc.delegatee, tc.delegator, tc.perm)
		wantErr(t, "bad input", err, ErrInvalidArgument)
	}

	// Revoking the direct link leaves the other chain, which lacks read.
	if err := e.s.RevokeDelegation(ctx, direct.ID()); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.FindGrant(ctx, "approver", "owner", "memory:read")
	wantErr(t, "after revoking the direct grant", err, ErrNotFound)
	if _, err := e.s.FindGrant(ctx, "approver", "owner", "memory:write"); err != nil {
		t.Fatalf("the other chain survives: %v", err)
	}
	// Revoking the root of the other chain cascades to its index entries.
	if err := e.s.RevokeDelegation(ctx, top.ID()); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.FindGrant(ctx, "approver", "owner", "memory:write")
	wantErr(t, "after revoking the chain's root", err, ErrNotFound)
	if got := grantEntries(t, e); len(got) != 0 {
		t.Fatalf("revoked links left index entries: %q", got)
	}
}

func TestFindGrantFollowsExpiryAndAgentState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("owner", "alice")
	e.register("approver", "alice")
	d := e.delegate("owner", "approver", []string{"memory:read"}, nil) // one hour

	e.clock.Advance(59 * time.Minute)
	if _, err := e.s.FindGrant(ctx, "approver", "owner", "memory:read"); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	suspended := StatusSuspended
	if _, err := e.s.Update(ctx, "owner", AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.FindGrant(ctx, "approver", "owner", "memory:read")
	wantErr(t, "owner suspended", err, ErrNotFound)
	active := StatusActive
	if _, err := e.s.Update(ctx, "owner", AgentUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.FindGrant(ctx, "approver", "owner", "memory:read"); err != nil {
		t.Fatalf("owner active again: %v", err)
	}

	e.clock.Advance(time.Minute)
	_, err = e.s.FindGrant(ctx, "approver", "owner", "memory:read")
	wantErr(t, "expired", err, ErrNotFound)

	// The next delegation to the approver prunes the expired entry.
	fresh := e.delegate("owner", "approver", []string{"memory:read"}, nil)
	if got, want := grantEntries(t, e), []string{entry("approver", fresh)}; !slices.Equal(got, want) {
		t.Fatalf("index %q, want %q (the expired %s pruned)", got, want, d.ID())
	}
	if c, err := e.s.FindGrant(ctx, "approver", "owner", "memory:read"); err != nil || c.Links()[0].ID() != fresh.ID() {
		t.Fatalf("fresh grant: %v", err)
	}
	if err := e.s.Revoke(ctx, "approver"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.FindGrant(ctx, "approver", "owner", "memory:read")
	wantErr(t, "delegatee revoked", err, ErrNotFound)
}

func TestFindGrantPrefersTheLongestLived(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("owner", "alice")
	e.register("approver", "alice")
	now := e.clock.Now()
	var ids []DelegationID
	for _, ttl := range []time.Duration{10 * time.Minute, 3 * time.Hour, time.Hour} {
		d, err := e.s.CreateDelegation(ctx, "owner", "approver", []string{"memory:read"}, now.Add(ttl), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID())
	}
	c, err := e.s.FindGrant(ctx, "approver", "owner", "memory:read")
	if err != nil || c.Links()[0].ID() != ids[1] {
		t.Fatalf("want the 3-hour grant: %v", err)
	}
}

func TestGrantIndexSurvivesRestartAndIsRebuiltWhenMissing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"owner", "supervisor", "approver"} {
		e.register(id, "alice")
	}
	top := e.delegate("owner", "supervisor", []string{"memory:read"}, nil)
	below := e.delegate("supervisor", "approver", []string{"memory:read"}, top)
	revoked := e.delegate("owner", "approver", []string{"memory:write"}, nil)
	if err := e.s.RevokeDelegation(ctx, revoked.ID()); err != nil {
		t.Fatal(err)
	}
	want := grantEntries(t, e)
	if !slices.Equal(want, []string{entry("approver", below), entry("supervisor", top)}) {
		t.Fatalf("index %q", want)
	}

	e.restart()
	if got := grantEntries(t, e); !slices.Equal(got, want) {
		t.Fatalf("after restart %q, want %q", got, want)
	}

	// A store written before the index existed has neither the entries nor
	// the marker; the next start rebuilds them from the links.
	var b kv.Batch
	b.Delete([]byte(keyGrantIndex))
	for _, k := range want {
		b.Delete([]byte(prefixGrantIndex + k))
	}
	if err := e.s.store.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.FindGrant(ctx, "approver", "owner", "memory:read"); err == nil {
		t.Fatal("found a grant with the index gone")
	}
	e.restart()
	if got := grantEntries(t, e); !slices.Equal(got, want) {
		t.Fatalf("rebuilt %q, want %q", got, want)
	}
	c, err := e.s.FindGrant(ctx, "approver", "owner", "memory:read")
	if err != nil || len(c.Links()) != 2 {
		t.Fatalf("after the rebuild: %v", err)
	}
	_, err = e.s.FindGrant(ctx, "approver", "owner", "memory:write")
	wantErr(t, "a revoked link is not rebuilt", err, ErrNotFound)
}

func TestFindGrantAfterClose(t *testing.T) {
	e := newEnv(t)
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.FindGrant(context.Background(), "a", "b", "memory:read")
	wantErr(t, "closed", err, ErrClosed)
}

// A damaged index entry is reported, not read as "no grant" and not
// trusted: the chains it would name are verified from the links anyway.
func TestFindGrantReportsACorruptIndexEntry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("owner", "alice")
	e.register("approver", "alice")
	e.delegate("owner", "approver", []string{"memory:read"}, nil)
	var b kv.Batch
	// The right root, then a permission whose length runs past the end.
	b.Set(append(grantPrefix("approver"), "00000000000000000000000000000000"...), append(grantValue(&Delegation{expiresAt: 1 << 60}, "owner"), 9, 'x'))
	if err := e.s.store.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.FindGrant(ctx, "approver", "owner", "memory:read")
	wantErr(t, "corrupt entry", err, ErrDelegationMalformed)
	// Entries of other roots are not even decoded past their root.
	if _, err := e.s.FindGrant(ctx, "approver", "someone-else", "memory:read"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another root: %v", err)
	}
}
