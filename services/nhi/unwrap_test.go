package nhi

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/creto-systems/creto/services/crypto"
)

// wrapFor seals dek to the agent's current KEM key, as a storage service
// does, and returns the sealed bytes and the key version.
func wrapFor(t *testing.T, e *testEnv, agentID string, dek, info []byte) ([]byte, uint32) {
	t.Helper()
	v, pub, err := e.s.KEMPublicKey(context.Background(), agentID)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := crypto.HPKESeal(pub, WrapAEAD, info, nil, dek)
	if err != nil {
		t.Fatal(err)
	}
	return sealed, v
}

func TestUnwrapKeyRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.register("owner", "alice")
	ctx := context.Background()
	dek, info := bytes.Repeat([]byte{7}, 32), []byte("bucket/key/version")
	sealed, v := wrapFor(t, e, "owner", dek, info)
	if v != 1 {
		t.Fatalf("key version %d", v)
	}
	got, err := e.s.UnwrapKey(ctx, "owner", v, sealed, info)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dek) {
		t.Fatal("unwrapped another key")
	}
	// The wrap is to this agent's key: the public key the service returns
	// is the one on record.
	pk, err := e.s.GetPublicKeys(ctx, "owner")
	if err != nil {
		t.Fatal(err)
	}
	_, pub, _ := e.s.KEMPublicKey(ctx, "owner")
	if !pub.Equal(pk.KEM) || pub.Algorithm() != crypto.XWing {
		t.Fatal("KEMPublicKey is not the agent's X-Wing key")
	}
	// And it survives a restart, which reads the sealed key from the store.
	e.restart()
	if got, err = e.s.UnwrapKey(ctx, "owner", v, sealed, info); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("after restart: %v", err)
	}
}

func TestUnwrapKeyRefusesWhatItShould(t *testing.T) {
	e := newEnv(t)
	e.register("owner", "alice")
	e.register("other", "bob")
	ctx := context.Background()
	dek, info := bytes.Repeat([]byte{7}, 32), []byte("object-1")
	sealed, v := wrapFor(t, e, "owner", dek, info)
	otherSealed, ov := wrapFor(t, e, "other", dek, info)

	cases := []struct {
		name    string
		agent   string
		version uint32
		sealed  []byte
		info    []byte
		want    error
	}{
		{"other info", "owner", v, sealed, []byte("object-2"), ErrUnwrapFailed},
		{"tampered", "owner", v, append(bytes.Clone(sealed[:len(sealed)-1]), sealed[len(sealed)-1]^1), info, ErrUnwrapFailed},
		{"truncated", "owner", v, sealed[:100], info, ErrUnwrapFailed},
		{"wrapped for another agent", "owner", ov, otherSealed, info, ErrUnwrapFailed},
		{"unknown version", "owner", 9, sealed, info, ErrNotFound},
		{"unknown agent", "nobody", v, sealed, info, ErrNotFound},
	}
	for _, c := range cases {
		got, err := e.s.UnwrapKey(ctx, c.agent, c.version, c.sealed, c.info)
		wantErr(t, c.name, err, c.want)
		if got != nil {
			t.Fatalf("%s: returned a key with the error", c.name)
		}
	}

	suspended := StatusSuspended
	if _, err := e.s.Update(ctx, "owner", AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.UnwrapKey(ctx, "owner", v, sealed, info)
	wantErr(t, "suspended", err, ErrSuspended)
	_, _, err = e.s.KEMPublicKey(ctx, "owner")
	wantErr(t, "suspended: public key", err, ErrSuspended)
	active := StatusActive
	if _, err := e.s.Update(ctx, "owner", AgentUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.UnwrapKey(ctx, "owner", v, sealed, info); err != nil {
		t.Fatalf("reactivated: %v", err)
	}

	if err := e.s.Revoke(ctx, "owner"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.UnwrapKey(ctx, "owner", v, sealed, info)
	wantErr(t, "revoked", err, ErrRevoked)
	_, _, err = e.s.KEMPublicKey(ctx, "owner")
	wantErr(t, "revoked: public key", err, ErrRevoked)
	// Revocation deleted the private key from the store, not just the
	// status check in front of it.
	ring, err := e.s.loadRing(ctx, agentKeyPrefix("owner"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ring.versions[0].rec.KEMSealed) != 0 {
		t.Fatal("a revoked agent's private KEM key is still stored")
	}
}

// Keys wrapped to an old version keep unwrapping after a rotation, even
// one that retired the old version's signatures at once; new wraps go to
// the new version.
func TestUnwrapKeyAfterRotation(t *testing.T) {
	e := newEnv(t)
	e.register("owner", "alice")
	ctx := context.Background()
	dek, info := bytes.Repeat([]byte{9}, 32), []byte("object")
	old, v1 := wrapFor(t, e, "owner", dek, info)
	if _, err := e.s.RotateKeys(ctx, "owner", 0); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	fresh, v2 := wrapFor(t, e, "owner", dek, info)
	if v2 != v1+1 {
		t.Fatalf("after rotation the key version is %d", v2)
	}
	for _, c := range []struct {
		v      uint32
		sealed []byte
	}{{v1, old}, {v2, fresh}} {
		got, err := e.s.UnwrapKey(ctx, "owner", c.v, c.sealed, info)
		if err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("version %d: %v", c.v, err)
		}
	}
	_, err := e.s.UnwrapKey(ctx, "owner", v2, old, info)
	wantErr(t, "wrong version", err, ErrUnwrapFailed)
}

func TestDelegationGrant(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"alice-agent", "bob-agent", "carol-agent"} {
		e.register(id, "alice")
	}
	ctx := context.Background()
	root := e.delegate("alice-agent", "bob-agent", []string{"storage:read", "storage:write"}, nil)
	leaf := e.delegate("bob-agent", "carol-agent", []string{"storage:read"}, root)
	r, p, perms, err := e.s.DelegationGrant(ctx, leaf.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if r != "alice-agent" || p != "carol-agent" || len(perms) != 1 || perms[0] != "storage:read" {
		t.Fatalf("grant %s → %s %v", r, p, perms)
	}
	_, _, _, err = e.s.DelegationGrant(ctx, "not-hex")
	wantErr(t, "bad id", err, ErrInvalidArgument)
	_, _, _, err = e.s.DelegationGrant(ctx, DelegationID{1}.String())
	wantErr(t, "unknown id", err, ErrNotFound)
	if err := e.s.RevokeDelegation(ctx, root.ID()); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = e.s.DelegationGrant(ctx, leaf.ID().String())
	wantErr(t, "revoked", err, ErrDelegationRevoked)
}
