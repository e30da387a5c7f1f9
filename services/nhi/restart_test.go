package nhi

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Everything survives a restart on the same directory: agents, keys (still
// opened by the node key), tokens, token revocations and delegations.
func TestRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	e.register("b", "alice")
	e.register("c", "bob")
	e.register("d", "bob")
	if err := e.s.Revoke(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.RotateKeys(ctx, "b", time.Hour); err != nil {
		t.Fatal(err)
	}
	agentsBefore, _ := e.s.List(ctx, ListOptions{})
	keysA, _ := e.s.GetPublicKeys(ctx, "a")
	versionsB, _ := e.s.PublicKeyVersions(ctx, "b")
	sig, err := e.s.Sign(ctx, "a", []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	tok, revokedTok := e.token("a", 0), e.token("a", 0)
	if err := e.s.RevokeToken(ctx, revokedTok); err != nil {
		t.Fatal(err)
	}
	d1 := e.delegate("a", "b", []string{"read", "write"}, nil)
	d2 := e.delegate("b", "c", []string{"read"}, d1)
	side := e.delegate("a", "c", []string{"read"}, nil)
	if err := e.s.RevokeDelegation(ctx, side.ID()); err != nil {
		t.Fatal(err)
	}

	e.restart()

	agentsAfter, err := e.s.List(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(agentsAfter) != len(agentsBefore) {
		t.Fatalf("%d agents after restart, %d before", len(agentsAfter), len(agentsBefore))
	}
	for i := range agentsBefore {
		b, a := agentsBefore[i], agentsAfter[i]
		if a.ID != b.ID || a.Status != b.Status || !a.CreatedAt.Equal(b.CreatedAt) || a.OwnerID != b.OwnerID {
			t.Fatalf("agent %d: %+v after restart, %+v before", i, a, b)
		}
	}
	if k, _ := e.s.GetPublicKeys(ctx, "a"); !k.Signing.Equal(keysA.Signing) || !k.KEM.Equal(keysA.KEM) {
		t.Fatal("agent a's keys changed across the restart")
	}
	if vs, _ := e.s.PublicKeyVersions(ctx, "b"); len(vs) != 2 || !vs[0].Signing.Equal(versionsB[0].Signing) || !vs[1].Signing.Equal(versionsB[1].Signing) {
		t.Fatal("agent b's key versions changed across the restart")
	}
	if err := e.s.Verify(ctx, "a", []byte("before"), sig); err != nil {
		t.Fatalf("signature from before the restart: %v", err)
	}
	// The private keys still open under the node key: signing works.
	for _, id := range []string{"a", "b"} {
		s, err := e.s.Sign(ctx, id, []byte("after"))
		if err != nil {
			t.Fatalf("sign as %s after restart: %v", id, err)
		}
		if err := e.s.Verify(ctx, id, []byte("after"), s); err != nil {
			t.Fatal(err)
		}
	}
	if a, err := e.s.ResolveToken(ctx, tok); err != nil || a.ID != "a" {
		t.Fatalf("token from before the restart: %v", err)
	}
	_, err = e.s.ResolveToken(ctx, revokedTok)
	wantErr(t, "revoked token after restart", err, ErrTokenRevoked)
	if r, _ := e.s.IsRevoked(ctx, "d"); !r {
		t.Fatal("revocation of d lost")
	}
	chain, err := e.s.VerifyDelegation(ctx, d2.ID())
	if err != nil {
		t.Fatalf("chain from before the restart: %v", err)
	}
	if ids := []string{chain.Links()[0].Delegator(), chain.Principal()}; !slices.Equal(ids, []string{"a", "c"}) {
		t.Fatalf("chain %v", ids)
	}
	_, err = e.s.VerifyDelegation(ctx, side.ID())
	wantErr(t, "revoked delegation after restart", err, ErrDelegationRevoked)
	// New links extend the old chain.
	e.register("e", "bob")
	e.delegate("c", "e", []string{"read"}, d2)
}
