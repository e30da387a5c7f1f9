package nhi

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/creto-systems/creto/services/crypto"
)

func TestSignVerify(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	e.register("b", "alice")
	msg := []byte("attestation: sandbox 42 runs image sha256:…")
	sig, err := e.s.Sign(ctx, "a", msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != signatureSize {
		t.Fatalf("signature is %d bytes; signatureSize says %d", len(sig), signatureSize)
	}
	if err := e.s.Verify(ctx, "a", msg, sig); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The signature verifies under the published key with the plain
	// crypto call, so any holder of the public key can check it.
	pk, err := e.s.GetPublicKeys(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := crypto.New().Verify(pk.Signing, msg, contextAgentMessage, sig); err != nil {
		t.Fatalf("raw verify: %v", err)
	}

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	wantErr(t, "other message", e.s.Verify(ctx, "a", []byte("other"), sig), ErrInvalidSignature)
	wantErr(t, "other agent", e.s.Verify(ctx, "b", msg, sig), ErrInvalidSignature)
	wantErr(t, "unknown agent", e.s.Verify(ctx, "c", msg, sig), ErrNotFound)
	for _, i := range []int{0, 1, 3, 4, 100, len(sig) - 70, len(sig) - 1} {
		wantErr(t, "flipped signature byte", e.s.Verify(ctx, "a", msg, flip(sig, i)), ErrInvalidSignature)
	}
	wantErr(t, "truncated", e.s.Verify(ctx, "a", msg, sig[:len(sig)-1]), ErrInvalidSignature)
	wantErr(t, "oversize", e.s.Verify(ctx, "a", msg, append(bytes.Clone(sig), 0)), ErrInvalidSignature)
	wantErr(t, "empty", e.s.Verify(ctx, "a", msg, nil), ErrInvalidSignature)

	// Agent signatures are domain-separated from delegations and tokens.
	if err := crypto.New().Verify(pk.Signing, msg, contextDelegation, sig); err == nil {
		t.Fatal("an agent message signature verified as a delegation signature")
	}
}

func TestSignNeedsAnActiveAgent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.register("a", "alice")
	suspended := StatusSuspended
	if _, err := e.s.Update(ctx, a.ID, AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.Sign(ctx, a.ID, nil)
	wantErr(t, "suspended", err, ErrSuspended)
	_, err = e.s.Sign(ctx, "nobody", nil)
	wantErr(t, "unknown", err, ErrNotFound)

	exp := e.clock.Now().Add(time.Minute)
	if _, err := e.s.Register(ctx, AgentIdentity{ID: "short", Type: AgentTypeService, OwnerID: "alice", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	_, err = e.s.Sign(ctx, "short", nil)
	wantErr(t, "expired agent", err, ErrExpired)
}

func TestRotateKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	before, _ := e.s.GetPublicKeys(ctx, "a")
	oldSig, err := e.s.Sign(ctx, "a", []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := e.s.RotateKeys(ctx, "a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version+1 || after.Signing.Equal(before.Signing) || after.KEM.Equal(before.KEM) {
		t.Fatalf("rotation gave version %d (was %d), same keys: %v", after.Version, before.Version, after.Signing.Equal(before.Signing))
	}
	if cur, _ := e.s.GetPublicKeys(ctx, "a"); cur.Version != after.Version {
		t.Fatalf("current version %d after rotation, want %d", cur.Version, after.Version)
	}
	newSig, err := e.s.Sign(ctx, "a", []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if crypto.New().Verify(after.Signing, []byte("m"), contextAgentMessage, newSig) != nil {
		t.Fatal("the new signature is not by the new key")
	}
	if vs, _ := e.s.PublicKeyVersions(ctx, "a"); len(vs) != 2 || vs[0].Version != after.Version || !vs[1].NotAfter.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("versions during the overlap: %+v", vs)
	}
	if err := e.s.Verify(ctx, "a", []byte("m"), oldSig); err != nil {
		t.Fatalf("old signature during the overlap: %v", err)
	}

	e.clock.Advance(time.Hour)
	wantErr(t, "old signature after the overlap", e.s.Verify(ctx, "a", []byte("m"), oldSig), ErrInvalidSignature)
	if err := e.s.Verify(ctx, "a", []byte("m"), newSig); err != nil {
		t.Fatalf("new signature: %v", err)
	}
	if vs, _ := e.s.PublicKeyVersions(ctx, "a"); len(vs) != 1 {
		t.Fatalf("%d versions after the overlap, want 1", len(vs))
	}

	// Overlap 0 retires the old key at once.
	if _, err := e.s.RotateKeys(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "signature of a key retired with no overlap", e.s.Verify(ctx, "a", []byte("m"), newSig), ErrInvalidSignature)
	_, err = e.s.RotateKeys(ctx, "a", -time.Second)
	wantErr(t, "negative overlap", err, ErrInvalidArgument)
}

func TestKeysExpireWithoutRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	e.clock.Advance(DefaultConfig().KeyValidity)
	_, err := e.s.Sign(ctx, "a", nil)
	wantErr(t, "sign with an expired key", err, ErrExpired)
	_, err = e.s.GetPublicKeys(ctx, "a")
	wantErr(t, "current keys expired", err, ErrExpired)
	if _, err := e.s.RotateKeys(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Sign(ctx, "a", nil); err != nil {
		t.Fatalf("sign after rotation: %v", err)
	}
}

func TestComponentKeys(t *testing.T) {
	e := newEnv(t)
	e.register("a", "alice")
	pk, err := e.s.GetPublicKeys(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pk.Components()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		key  *crypto.PublicKey
		alg  crypto.Algorithm
		size int
	}{
		{c.Ed25519, crypto.Ed25519, 32}, {c.MLDSA65, crypto.MLDSA65, 1952},
		{c.X25519, crypto.X25519, 32}, {c.MLKEM768, crypto.MLKEM768, 1184},
	} {
		if k.key.Algorithm() != k.alg || len(k.key.Raw()) != k.size {
			t.Errorf("%v component: %v, %d bytes", k.alg, k.key.Algorithm(), len(k.key.Raw()))
		}
	}
	if !bytes.Equal(pk.Signing.Raw(), append(c.MLDSA65.Raw(), c.Ed25519.Raw()...)) {
		t.Error("signing key is not mldsaPK ‖ edPK")
	}
	if !bytes.Equal(pk.KEM.Raw(), append(c.MLKEM768.Raw(), c.X25519.Raw()...)) {
		t.Error("KEM key is not mlkemPK ‖ x25519PK")
	}
	if pk.KEM.Algorithm() != crypto.XWing || pk.Signing.Algorithm() != crypto.Ed25519MLDSA65 {
		t.Errorf("hybrids are %v and %v", pk.Signing.Algorithm(), pk.KEM.Algorithm())
	}
}

// No private key ever reaches the disk unencrypted: after the service has
// written and flushed everything, neither any key's seed nor the data key
// appears in any file of the data directory.
func TestPrivateKeysEncryptedAtRest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	if _, err := e.s.RotateKeys(ctx, "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	ring, err := e.s.agentRing(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	signer, err := e.s.unsealSigner(ring.current())
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := crypto.MarshalPrivateKey(signer)
	kemSeed, err := e.s.p.Decrypt(e.s.dek, ring.current().rec.KEMSealed, sealLabel(ring.current().storeID, roleKEM))
	if err != nil {
		t.Fatal(err)
	}
	nodeSeed, _ := crypto.MarshalPrivateKey(e.s.node.Load().signer)
	dek, _ := crypto.MarshalSymmetricKey(e.s.dek)
	// The raw seed bytes, without the 4-byte encoding header.
	for _, s := range [][]byte{seed, kemSeed, nodeSeed, dek} {
		secrets = append(secrets, bytes.Clone(s[4:]))
	}
	e.restart() // flushes the WAL and memtables to files
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(filepath.Join(e.dir, "kv"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, s := range secrets {
			if bytes.Contains(b, s) {
				return errors.New("secret " + string(rune('0'+i)) + " found in " + d.Name())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(e.dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("node.key mode %v, want 0600", st.Mode().Perm())
	}
}

// A sealed private key copied into another agent's record does not open:
// the seal is bound to the record it was made for.
func TestSealedKeyIsBoundToItsRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	e.register("b", "alice")
	ra, _ := e.s.agentRing(ctx, "a")
	rb, _ := e.s.agentRing(ctx, "b")
	swapped := &keyVersion{rec: rb.current().rec, storeID: rb.current().storeID, signing: rb.current().signing}
	swapped.rec.SigningSealed = ra.current().rec.SigningSealed
	_, err := e.s.unsealSigner(swapped)
	wantErr(t, "a's sealed key in b's record", err, ErrSealed)
}
