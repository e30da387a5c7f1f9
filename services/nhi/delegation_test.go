package nhi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/entity"
	"github.com/creto-systems/creto/internal/kv"
)

func TestDelegationChain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		e.register(id, "alice")
	}
	d1 := e.delegate("a", "b", []string{"write", "read", "send_email", "read"}, nil)
	d2 := e.delegate("b", "c", []string{"send_email", "read"}, d1)
	if got := d1.Permissions(); !slices.Equal(got, []string{"read", "send_email", "write"}) {
		t.Fatalf("permissions not normalised: %q", got)
	}
	if p, ok := d2.Parent(); !ok || p != d1.ID() || d2.Depth() != 2 || d2.Delegator() != "b" || d2.Delegatee() != "c" {
		t.Fatalf("link 2: parent %v %v, depth %d", p, ok, d2.Depth())
	}
	if _, ok := d1.Parent(); ok || d1.Depth() != 1 {
		t.Fatal("link 1 has a parent")
	}
	if !d2.CreatedAt().Equal(e.clock.Now()) || !d2.ExpiresAt().Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("link 2 times %v, %v", d2.CreatedAt(), d2.ExpiresAt())
	}

	got, err := e.s.GetDelegationChain(ctx, d2.ID())
	if err != nil {
		t.Fatal(err)
	}
	if l := got.Links(); len(l) != 2 || l[0].ID() != d1.ID() || l[1].ID() != d2.ID() || got.Verified() {
		t.Fatalf("GetDelegationChain: %d links, verified %v", len(l), got.Verified())
	}
	_, err = got.EntityRefs()
	wantErr(t, "refs of an unverified chain", err, ErrNotVerified)

	chain, err := e.s.VerifyDelegation(ctx, d2.ID())
	if err != nil {
		t.Fatal(err)
	}
	refs, err := chain.EntityRefs()
	if err != nil {
		t.Fatal(err)
	}
	if want := []entity.Ref{{Type: "Agent", ID: "a"}, {Type: "Agent", ID: "b"}}; !slices.Equal(refs, want) {
		t.Fatalf("refs %v, want %v", refs, want)
	}
	if chain.Root() != "a" || chain.Principal() != "c" || !slices.Equal(chain.Permissions(), []string{"read", "send_email"}) || !chain.ValidUntil().Equal(d2.ExpiresAt()) {
		t.Fatalf("chain root %q principal %q permissions %q until %v", chain.Root(), chain.Principal(), chain.Permissions(), chain.ValidUntil())
	}

	// The wire form round-trips and verifies from elsewhere.
	decoded, err := DecodeDelegationChain(chain.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if decoded.Verified() || !bytes.Equal(decoded.Encode(), chain.Encode()) {
		t.Fatal("decoded chain is verified, or does not re-encode identically")
	}
	if v, err := e.s.VerifyChain(ctx, decoded); err != nil || !v.Verified() || decoded.Verified() {
		t.Fatalf("VerifyChain: %v", err)
	}
	one, err := DecodeDelegation(d1.Encode())
	if err != nil || one.ID() != d1.ID() || !bytes.Equal(one.Encode(), d1.Encode()) {
		t.Fatalf("DecodeDelegation: %v", err)
	}

	if id, err := ParseDelegationID(d1.ID().String()); err != nil || id != d1.ID() {
		t.Fatalf("ParseDelegationID: %v", err)
	}
	for _, s := range []string{"", "xyz", strings.Repeat("g", 32), d1.ID().String() + "00"} {
		_, err := ParseDelegationID(s)
		wantErr(t, "ParseDelegationID("+s+")", err, ErrInvalidArgument)
	}
	_, err = e.s.VerifyDelegation(ctx, DelegationID{1})
	wantErr(t, "unknown id", err, ErrNotFound)
}

func TestCreateDelegationRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "d"} {
		e.register(id, "alice")
	}
	now := e.clock.Now()
	d1, err := e.s.CreateDelegation(ctx, "a", "b", []string{"read", "send_email"}, now.Add(10*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	p1 := d1.ID()
	create := func(from, to string, perms []string, exp time.Time, parent *DelegationID) error {
		_, err := e.s.CreateDelegation(ctx, from, to, perms, exp, parent)
		return err
	}
	for name, c := range map[string]struct {
		err  error
		want error
	}{
		"widened permissions":         {create("b", "c", []string{"read", "write"}, time.Time{}, &p1), ErrWidened},
		"outlives the parent":         {create("b", "c", []string{"read"}, now.Add(11*time.Minute), &p1), ErrWidened},
		"delegator is not delegatee":  {create("c", "d", []string{"read"}, time.Time{}, &p1), ErrChainBroken},
		"back to the root":            {create("b", "a", []string{"read"}, time.Time{}, &p1), ErrDelegationCycle},
		"to itself":                   {create("a", "a", []string{"read"}, time.Time{}, nil), ErrDelegationCycle},
		"expiry in the past":          {create("a", "b", []string{"read"}, now.Add(-time.Second), nil), ErrInvalidArgument},
		"expiry now":                  {create("a", "b", []string{"read"}, now, nil), ErrInvalidArgument},
		"expiry beyond the maximum":   {create("a", "b", []string{"read"}, now.Add(25*time.Hour), nil), ErrInvalidArgument},
		"no permissions":              {create("a", "b", nil, time.Time{}, nil), ErrInvalidArgument},
		"empty permission":            {create("a", "b", []string{""}, time.Time{}, nil), ErrInvalidArgument},
		"permission with a space":     {create("a", "b", []string{"read all"}, time.Time{}, nil), ErrInvalidArgument},
		"oversize permission":         {create("a", "b", []string{strings.Repeat("p", MaxPermissionLength+1)}, time.Time{}, nil), ErrInvalidArgument},
		"too many permissions":        {create("a", "b", manyPermissions(MaxPermissions+1), time.Time{}, nil), ErrInvalidArgument},
		"unknown delegatee":           {create("a", "zz", []string{"read"}, time.Time{}, nil), ErrNotFound},
		"unknown delegator":           {create("zz", "a", []string{"read"}, time.Time{}, nil), ErrNotFound},
		"unknown parent":              {create("b", "c", []string{"read"}, time.Time{}, &DelegationID{7}), ErrNotFound},
		"invalid delegator id":        {create("a b", "c", []string{"read"}, time.Time{}, nil), ErrInvalidArgument},
		"exactly the parent's rights": {create("b", "c", []string{"read", "send_email"}, time.Time{}, &p1), nil},
	} {
		if c.want == nil {
			if c.err != nil {
				t.Errorf("%s: %v", name, c.err)
			}
			continue
		}
		wantErr(t, name, c.err, c.want)
	}
	if _, err := e.s.CreateDelegation(ctx, "a", "b", manyPermissions(MaxPermissions), time.Time{}, nil); err != nil {
		t.Fatalf("the maximum number of permissions: %v", err)
	}

	// A zero expiry under a parent takes the parent's, if sooner.
	child, err := e.s.CreateDelegation(ctx, "b", "c", []string{"read"}, time.Time{}, &p1)
	if err != nil {
		t.Fatal(err)
	}
	if !child.ExpiresAt().Equal(d1.ExpiresAt()) {
		t.Fatalf("child expires %v, parent %v", child.ExpiresAt(), d1.ExpiresAt())
	}
	c2 := child.ID()
	err = create("c", "b", []string{"read"}, time.Time{}, &c2)
	wantErr(t, "back to the middle", err, ErrDelegationCycle)

	suspended := StatusSuspended
	if _, err := e.s.Update(ctx, "d", AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "suspended delegatee", create("c", "d", []string{"read"}, time.Time{}, &c2), ErrSuspended)
	wantErr(t, "suspended delegator", create("d", "a", []string{"read"}, time.Time{}, nil), ErrSuspended)
	if err := e.s.Revoke(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "revoked delegatee", create("a", "d", []string{"read"}, time.Time{}, nil), ErrRevoked)

	e.clock.Advance(10 * time.Minute)
	wantErr(t, "under an expired parent", create("b", "c", []string{"read"}, time.Time{}, &p1), ErrDelegationExpired)
}

func manyPermissions(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("perm-%02d", i)
	}
	return out
}

// chainOf registers agents a0..an and delegates a0→a1→…→an.
func chainOf(e *testEnv, n int) []*Delegation {
	e.t.Helper()
	for i := 0; i <= n; i++ {
		e.register(fmt.Sprintf("a%d", i), "alice")
	}
	var links []*Delegation
	var parent *Delegation
	for i := range n {
		parent = e.delegate(fmt.Sprintf("a%d", i), fmt.Sprintf("a%d", i+1), []string{"read"}, parent)
		links = append(links, parent)
	}
	return links
}

func TestMaxDepth(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	links := chainOf(e, 10)
	chain, err := e.s.VerifyDelegation(ctx, links[9].ID())
	if err != nil {
		t.Fatalf("10 links: %v", err)
	}
	e.register("a11", "alice")
	leaf := links[9].ID()
	_, err = e.s.CreateDelegation(ctx, "a10", "a11", []string{"read"}, time.Time{}, &leaf)
	wantErr(t, "an 11th link", err, ErrChainTooDeep)

	// The engine's default limits accept the longest chain NHI allows.
	refs, _ := chain.EntityRefs()
	eng := engine.New(engine.WithEntities(e.s.Entities(nil)))
	defer eng.Close()
	if _, err := eng.CreatePolicy(ctx, "deep", `permit(principal, action, resource) when { context.delegation.depth == 10 };`); err != nil {
		t.Fatal(err)
	}
	d, err := eng.Check(ctx, engine.Request{
		Principal: engine.Principal{Type: "Agent", ID: chain.Principal()}, Delegation: refs,
		Action: entity.Ref{ID: "read"}, Resource: entity.Ref{Type: "Doc", ID: "x"},
	})
	if err != nil || d.Kind != engine.Allow {
		t.Fatalf("engine with a 10-link chain: %v, %v", d.Kind, err)
	}
}

func TestConfiguredMaxDepth(t *testing.T) {
	e := &testEnv{t: t, dir: t.TempDir(), clock: newTestClock(), cfg: Config{DelegationChainMaxDepth: 2}}
	e.open()
	links := chainOf(e, 2)
	e.register("a3", "alice")
	leaf := links[1].ID()
	_, err := e.s.CreateDelegation(context.Background(), "a2", "a3", []string{"read"}, time.Time{}, &leaf)
	wantErr(t, "a third link", err, ErrChainTooDeep)
}

func TestRevocationCascades(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		e.register(id, "alice")
	}
	l1 := e.delegate("a", "b", []string{"read"}, nil)
	l2 := e.delegate("b", "c", []string{"read"}, l1)
	l3 := e.delegate("c", "d", []string{"read"}, l2)
	l3b := e.delegate("c", "f", []string{"read"}, l2)
	l2b := e.delegate("b", "e", []string{"read"}, l1)

	if err := e.s.RevokeDelegation(ctx, l2.ID()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		d       *Delegation
		revoked bool
	}{{l1, false}, {l2, true}, {l3, true}, {l3b, true}, {l2b, false}} {
		got, err := e.s.IsDelegationRevoked(ctx, c.d.ID())
		if err != nil || got != c.revoked {
			t.Errorf("%s→%s revoked = %v, %v; want %v", c.d.Delegator(), c.d.Delegatee(), got, err, c.revoked)
		}
	}
	for _, d := range []*Delegation{l2, l3, l3b} {
		_, err := e.s.VerifyDelegation(ctx, d.ID())
		wantErr(t, "verify below the revoked link", err, ErrDelegationRevoked)
	}
	for _, d := range []*Delegation{l1, l2b} {
		if _, err := e.s.VerifyDelegation(ctx, d.ID()); err != nil {
			t.Errorf("a link outside the revoked subtree: %v", err)
		}
	}
	l2id := l2.ID()
	_, err := e.s.CreateDelegation(ctx, "c", "e", []string{"read"}, time.Time{}, &l2id)
	wantErr(t, "extending a revoked link", err, ErrDelegationRevoked)
	if err := e.s.RevokeDelegation(ctx, l2.ID()); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	wantErr(t, "revoking an unknown link", e.s.RevokeDelegation(ctx, DelegationID{9}), ErrNotFound)
	_, err = e.s.IsDelegationRevoked(ctx, DelegationID{9})
	wantErr(t, "state of an unknown link", err, ErrNotFound)
}

func TestChainFollowsAgentState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	links := chainOf(e, 3)
	leaf := links[2].ID()
	suspended, active := StatusSuspended, StatusActive

	if _, err := e.s.Update(ctx, "a1", AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.VerifyDelegation(ctx, leaf)
	wantErr(t, "suspended middle agent", err, ErrDelegationRevoked, ErrSuspended)
	if _, err := e.s.Update(ctx, "a1", AgentUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.VerifyDelegation(ctx, leaf); err != nil {
		t.Fatalf("after reactivation: %v", err)
	}

	exp := e.clock.Now().Add(time.Minute)
	if _, err := e.s.Update(ctx, "a3", AgentUpdate{ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	_, err = e.s.VerifyDelegation(ctx, leaf)
	wantErr(t, "expired principal", err, ErrDelegationExpired, ErrExpired)

	if err := e.s.Revoke(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.VerifyDelegation(ctx, links[1].ID())
	wantErr(t, "revoked delegatee", err, ErrDelegationRevoked, ErrRevoked)
}

func TestDelegationExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	links := chainOf(e, 2)
	e.clock.Advance(time.Hour - time.Millisecond)
	if _, err := e.s.VerifyDelegation(ctx, links[1].ID()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Millisecond)
	_, err := e.s.VerifyDelegation(ctx, links[1].ID())
	wantErr(t, "expired", err, ErrDelegationExpired)
}

func TestRotationRetiresDelegations(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	links := chainOf(e, 2)
	if _, err := e.s.RotateKeys(ctx, "a0", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.VerifyDelegation(ctx, links[1].ID()); err != nil {
		t.Fatalf("during the overlap: %v", err)
	}
	if _, err := e.s.RotateKeys(ctx, "a0", 0); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.VerifyDelegation(ctx, links[1].ID())
	wantErr(t, "signed by a retired key", err, ErrDelegationRevoked)
}

// linkSpec describes a link the service itself would refuse to create;
// forge signs it with the delegator's real key and stores it, so these
// tests exercise the verifier on its own.
type linkSpec struct {
	from, to   string
	perms      []string
	parent     *Delegation
	depth      int           // default: parent's + 1
	expiresIn  time.Duration // default: an hour
	keyVersion uint32        // default: the delegator's current
	context    []byte        // default: the delegation context
}

func (e *testEnv) forge(spec linkSpec) *Delegation {
	e.t.Helper()
	ctx := context.Background()
	nowMS := e.clock.Now().UnixMilli()
	signer, version, err := e.s.currentSigner(ctx, spec.from, nowMS)
	if err != nil {
		e.t.Fatal(err)
	}
	d := &Delegation{depth: 1, createdAt: nowMS, expiresAt: nowMS + time.Hour.Milliseconds(),
		delegator: spec.from, delegatee: spec.to, permissions: spec.perms, keyVersion: version}
	if spec.parent != nil {
		d.parent, d.hasParent, d.depth = spec.parent.id, true, spec.parent.depth+1
	}
	if spec.depth != 0 {
		d.depth = spec.depth
	}
	if spec.expiresIn != 0 {
		d.expiresAt = nowMS + spec.expiresIn.Milliseconds()
	}
	if spec.keyVersion != 0 {
		d.keyVersion = spec.keyVersion
	}
	sigContext := contextDelegation
	if spec.context != nil {
		sigContext = spec.context
	}
	id, _ := e.s.p.RandomBytes(16)
	copy(d.id[:], id)
	body := d.appendBody(nil)
	sig, err := e.s.p.Sign(signer, body, sigContext)
	if err != nil {
		e.t.Fatal(err)
	}
	d.enc = append(body, sig...)
	e.putLink(d.id, append([]byte{stateActive}, d.enc...))
	return d
}

func (e *testEnv) putLink(id DelegationID, rec []byte) {
	e.t.Helper()
	var b kv.Batch
	b.Set(delegationKey(id), rec)
	if err := e.s.store.Apply(context.Background(), &b); err != nil {
		e.t.Fatal(err)
	}
}

func TestVerifierRejectsCraftedChains(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 12 {
		e.register(fmt.Sprintf("a%d", i), "alice")
	}
	root := e.delegate("a0", "a1", []string{"read", "write"}, nil)
	verify := func(d *Delegation) error {
		_, err := e.s.VerifyDelegation(ctx, d.ID())
		if err == nil {
			// The same chain sent over the wire must fail too.
			c, _ := e.s.GetDelegationChain(ctx, d.ID())
			dc, derr := DecodeDelegationChain(c.Encode())
			if derr != nil {
				return derr
			}
			_, err = e.s.VerifyChain(ctx, dc)
		}
		return err
	}

	wantErr(t, "widened permissions", verify(e.forge(linkSpec{from: "a1", to: "a2", perms: []string{"admin", "read"}, parent: root})), ErrWidened)
	wantErr(t, "outlives its parent", verify(e.forge(linkSpec{from: "a1", to: "a2", perms: []string{"read"}, parent: root, expiresIn: 2 * time.Hour})), ErrWidened)
	wantErr(t, "cycle back to the root", verify(e.forge(linkSpec{from: "a1", to: "a0", perms: []string{"read"}, parent: root})), ErrDelegationCycle)
	wantErr(t, "delegator is not the parent's delegatee", verify(e.forge(linkSpec{from: "a2", to: "a3", perms: []string{"read"}, parent: root})), ErrChainBroken)
	wantErr(t, "wrong depth", verify(e.forge(linkSpec{from: "a1", to: "a2", perms: []string{"read"}, parent: root, depth: 3})), ErrChainBroken)
	wantErr(t, "unknown key version", verify(e.forge(linkSpec{from: "a1", to: "a2", perms: []string{"read"}, parent: root, keyVersion: 7})), ErrDelegationForged)
	wantErr(t, "signed as an agent message", verify(e.forge(linkSpec{from: "a1", to: "a2", perms: []string{"read"}, parent: root, context: contextAgentMessage})), ErrDelegationForged)

	// An 11-hop chain, every link validly signed.
	parent := root
	for i := 1; i <= 10; i++ {
		parent = e.forge(linkSpec{from: fmt.Sprintf("a%d", i), to: fmt.Sprintf("a%d", i+1), perms: []string{"read"}, parent: parent})
	}
	wantErr(t, "11 hops", verify(parent), ErrChainTooDeep)

	// An expired link in the middle, under a leaf that claims to live on.
	mid := e.forge(linkSpec{from: "a1", to: "a2", perms: []string{"read"}, parent: root, expiresIn: time.Minute})
	leaf := e.forge(linkSpec{from: "a2", to: "a3", perms: []string{"read"}, parent: mid, expiresIn: 30 * time.Minute})
	e.clock.Advance(2 * time.Minute)
	wantErr(t, "expired middle link", verify(leaf), ErrDelegationExpired)

	// A revoked middle link, revoked only in its own record (as if the
	// cascade had not reached the leaf).
	mid = e.forge(linkSpec{from: "a1", to: "a2", perms: []string{"read"}, parent: root, expiresIn: 30 * time.Minute})
	leaf = e.forge(linkSpec{from: "a2", to: "a3", perms: []string{"read"}, parent: mid, expiresIn: 20 * time.Minute})
	e.putLink(mid.id, append([]byte{stateRevoked}, mid.enc...))
	wantErr(t, "revoked middle link", verify(leaf), ErrDelegationRevoked)
}

func TestTamperedDelegations(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	links := chainOf(e, 2)
	root, leaf := links[0], links[1]
	stored := func(d *Delegation, mutate func([]byte)) error {
		enc := d.Encode()
		mutate(enc)
		e.putLink(d.id, append([]byte{stateActive}, enc...))
		defer e.putLink(d.id, append([]byte{stateActive}, d.enc...))
		_, err := e.s.VerifyDelegation(ctx, leaf.ID())
		return err
	}
	for _, i := range []int{len(root.enc) - signatureSize, len(root.enc) - signatureSize + 4, len(root.enc) - 1000, len(root.enc) - 1} {
		wantErr(t, fmt.Sprintf("root signature byte %d flipped", i), stored(root, func(b []byte) { b[i] ^= 1 }), ErrDelegationForged)
	}
	wantErr(t, "root creation time changed", stored(root, func(b []byte) { b[48] ^= 1 }), ErrDelegationForged)
	wantErr(t, "leaf key version changed", stored(leaf, func(b []byte) { b[40] ^= 1 }), ErrDelegationForged)
	wantErr(t, "leaf permission renamed", stored(leaf, func(b []byte) { b[bytes.LastIndex(b, []byte("read"))] = 'R' }), ErrWidened)
	wantErr(t, "wrong algorithm id", stored(root, func(b []byte) { b[2] = 0x02 }), ErrDelegationMalformed)
	wantErr(t, "wrong version", stored(leaf, func(b []byte) { b[0] = 9 }), ErrDelegationMalformed)
	wantErr(t, "id changed", stored(root, func(b []byte) { b[3] ^= 1 }), ErrDelegationForged)
	e.putLink(leaf.id, []byte{7})
	_, err := e.s.VerifyDelegation(ctx, leaf.ID())
	wantErr(t, "corrupt state byte", err, ErrDelegationMalformed)
	e.putLink(leaf.id, append([]byte{stateActive}, leaf.enc...))

	// A chain from the wire whose link differs from the record.
	chain, _ := e.s.GetDelegationChain(ctx, leaf.ID())
	wire := chain.Encode()
	wire[bytes.LastIndex(wire, []byte("read"))] = 'R'
	dc, err := DecodeDelegationChain(wire)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.s.VerifyChain(ctx, dc)
	wantErr(t, "wire link differs from the record", err, ErrDelegationForged)
	_, err = e.s.VerifyChain(ctx, &DelegationChain{})
	wantErr(t, "empty chain", err, ErrDelegationMalformed)
	_, err = e.s.VerifyChain(ctx, nil)
	wantErr(t, "nil chain", err, ErrDelegationMalformed)
}

func TestDecodeDelegationErrors(t *testing.T) {
	e := newEnv(t)
	links := chainOf(e, 2)
	good := links[1].Encode()
	if _, err := DecodeDelegation(good); err != nil {
		t.Fatal(err)
	}
	for n := range len(good) {
		if _, err := DecodeDelegation(good[:n]); !errors.Is(err, ErrDelegationMalformed) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	_, err := DecodeDelegation(append(bytes.Clone(good), 0))
	wantErr(t, "trailing byte", err, ErrDelegationMalformed)

	sig := make([]byte, signatureSize)
	build := func(mutate func(d *Delegation)) []byte {
		d := *links[1]
		d.permissions = slices.Clone(d.permissions)
		mutate(&d)
		return append(d.appendBody(nil), sig...)
	}
	for name, b := range map[string][]byte{
		"depth 0":                 build(func(d *Delegation) { d.depth = 0 }),
		"depth 1 with a parent":   build(func(d *Delegation) { d.depth = 1 }),
		"depth 33":                build(func(d *Delegation) { d.depth = MaxChainLinks + 1 }),
		"parent id without flag":  build(func(d *Delegation) { d.hasParent = false }),
		"unsorted permissions":    build(func(d *Delegation) { d.permissions = []string{"write", "read"} }),
		"duplicate permissions":   build(func(d *Delegation) { d.permissions = []string{"read", "read"} }),
		"no permissions":          build(func(d *Delegation) { d.permissions = nil }),
		"too many permissions":    build(func(d *Delegation) { d.permissions = manyPermissions(MaxPermissions + 1) }),
		"permission with a space": build(func(d *Delegation) { d.permissions = []string{"a b"} }),
		"expires at creation":     build(func(d *Delegation) { d.expiresAt = d.createdAt }),
		"empty delegatee":         build(func(d *Delegation) { d.delegatee = "" }),
		"unknown flags":           func() []byte { b := bytes.Clone(good); b[19] |= 0x80; return b }(),
		"ed25519 algorithm":       func() []byte { b := bytes.Clone(good); b[2] = 0x01; return b }(),
	} {
		_, err := DecodeDelegation(b)
		wantErr(t, name, err, ErrDelegationMalformed)
	}

	chain := (&DelegationChain{links: links}).Encode()
	if _, err := DecodeDelegationChain(chain); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":         nil,
		"version 2":     append([]byte{2}, chain[1:]...),
		"no links":      {chainVersion, 0},
		"33 links":      {chainVersion, MaxChainLinks + 1},
		"count too big": append([]byte{chainVersion, 3}, chain[2:]...),
		"truncated":     chain[:len(chain)-1],
		"trailing byte": append(bytes.Clone(chain), 0),
		"bad link":      append([]byte{chainVersion, 1, 0, 3}, 1, 2, 3),
	} {
		_, err := DecodeDelegationChain(b)
		wantErr(t, "chain: "+name, err, ErrDelegationMalformed)
	}
}
