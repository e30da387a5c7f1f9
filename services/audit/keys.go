package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// Sealer protects the log's private signing keys at rest. The service
// calls it once at open (twice on first open, to seal new keys), never per
// operation. nhi.FileSealer is one implementation; a PKCS#11 or KMS
// backend is another.
type Sealer interface {
	// Seal encrypts plaintext, binding it to label: Unseal must be given
	// the same label.
	Seal(ctx context.Context, plaintext, label []byte) ([]byte, error)
	// Unseal reverses Seal. A ciphertext sealed under another key or label,
	// or tampered with, must fail rather than return other bytes.
	Unseal(ctx context.Context, sealed, label []byte) ([]byte, error)
}

// keyRecord is the stored form of the log's identity: its origin, the
// public keys, and the private keys sealed. It is written once, at the
// log's first open, and never changes.
type keyRecord struct {
	Origin        string `json:"origin"`
	Ed25519Public []byte `json:"ed25519_public"`
	HybridPublic  []byte `json:"hybrid_public"`
	Ed25519Sealed []byte `json:"ed25519_sealed"`
	HybridSealed  []byte `json:"hybrid_sealed"`
}

// sealLabel binds a sealed key to its role, so the sealed Ed25519 key can
// never be unsealed as the hybrid one.
func sealLabel(alg crypto.Algorithm) []byte {
	return []byte("creto-audit/signing-key/v1/" + alg.String())
}

// signingKeys are the log's two checkpoint keys, unsealed.
type signingKeys struct {
	verifier *Verifier
	ed       *noteSigner
	hybrid   *noteSigner
}

func (k *signingKeys) destroy() {
	if k == nil {
		return
	}
	k.ed.priv.Destroy()
	k.hybrid.priv.Destroy()
}

// createKeys generates the log's keys and returns them with the record to
// store. origin "" picks a random one.
func createKeys(ctx context.Context, p crypto.Provider, sealer Sealer, origin string) (*signingKeys, *keyRecord, error) {
	if origin == "" {
		suffix, err := p.RandomBytes(8)
		if err != nil {
			return nil, nil, err
		}
		origin = "creto.local/audit/" + hex.EncodeToString(suffix)
	}
	ed, err := p.GenerateKey(crypto.Ed25519)
	if err != nil {
		return nil, nil, err
	}
	hy, err := p.GenerateKey(crypto.Ed25519MLDSA65)
	if err != nil {
		ed.Destroy()
		return nil, nil, err
	}
	rec := &keyRecord{Origin: origin, Ed25519Public: ed.Public().Bytes(), HybridPublic: hy.Public().Bytes()}
	for _, s := range []struct {
		k   *crypto.PrivateKey
		out *[]byte
	}{{ed, &rec.Ed25519Sealed}, {hy, &rec.HybridSealed}} {
		enc, err := crypto.MarshalPrivateKey(s.k)
		if err == nil {
			*s.out, err = sealer.Seal(ctx, enc, sealLabel(s.k.Algorithm()))
			clear(enc)
		}
		if err != nil {
			ed.Destroy()
			hy.Destroy()
			return nil, nil, fmt.Errorf("seal signing key: %w", err)
		}
	}
	keys, err := newSigningKeys(p, origin, ed, hy)
	if err != nil {
		return nil, nil, err
	}
	return keys, rec, nil
}

// openKeys unseals the stored keys and checks they match the public keys
// stored beside them, so a swapped record fails at open rather than
// producing checkpoints no verifier accepts.
func openKeys(ctx context.Context, p crypto.Provider, sealer Sealer, rec *keyRecord) (*signingKeys, error) {
	var privs [2]*crypto.PrivateKey
	for i, s := range []struct {
		sealed, public []byte
		alg            crypto.Algorithm
	}{
		{rec.Ed25519Sealed, rec.Ed25519Public, crypto.Ed25519},
		{rec.HybridSealed, rec.HybridPublic, crypto.Ed25519MLDSA65},
	} {
		enc, err := sealer.Unseal(ctx, s.sealed, sealLabel(s.alg))
		if err != nil {
			destroyAll(privs[:])
			return nil, fmt.Errorf("%w: %w", ErrSealed, err)
		}
		privs[i], err = crypto.ParsePrivateKey(enc)
		clear(enc)
		if err != nil || privs[i].Algorithm() != s.alg || string(privs[i].Public().Bytes()) != string(s.public) {
			destroyAll(privs[:])
			return nil, detail(ErrSealed, "the sealed %v key does not match its public key", s.alg)
		}
	}
	return newSigningKeys(p, rec.Origin, privs[0], privs[1])
}

func destroyAll(keys []*crypto.PrivateKey) {
	for _, k := range keys {
		k.Destroy()
	}
}

func newSigningKeys(p crypto.Provider, origin string, ed, hy *crypto.PrivateKey) (*signingKeys, error) {
	v, err := newVerifier(p, origin, ed.Public(), hy.Public())
	if err != nil {
		ed.Destroy()
		hy.Destroy()
		return nil, err
	}
	return &signingKeys{
		verifier: v,
		ed:       &noteSigner{noteKey: v.ed, priv: ed},
		hybrid:   &noteSigner{noteKey: v.hybrid, priv: hy},
	}, nil
}

// readKeyRecord returns the stored key record, or nil when the log has
// none yet.
func readKeyRecord(ctx context.Context, store kv.Store) (*keyRecord, error) {
	raw, err := store.Get(ctx, []byte(keyKeys))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec keyRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, detail(ErrMalformed, "key record: %v", err)
	}
	return &rec, nil
}

// verifierFrom builds the public verifier of a key record.
func verifierFrom(p crypto.Provider, rec *keyRecord) (*Verifier, error) {
	ed, err := crypto.ParsePublicKey(rec.Ed25519Public)
	if err != nil {
		return nil, fmt.Errorf("%w: key record: %w", ErrMalformed, err)
	}
	hy, err := crypto.ParsePublicKey(rec.HybridPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: key record: %w", ErrMalformed, err)
	}
	return newVerifier(p, rec.Origin, ed, hy)
}

// ReadVerifier returns the verifier of the log kept in store, without
// unsealing anything: what `creto audit verifier-key` prints. It fails
// with ErrNotFound when the store holds no audit log.
func ReadVerifier(ctx context.Context, store kv.Store) (*Verifier, error) {
	rec, err := readKeyRecord(ctx, store)
	if err == nil && rec == nil {
		err = detail(ErrNotFound, "the store holds no audit log")
	}
	if err != nil {
		return nil, opError("read verifier", "", err)
	}
	v, err := verifierFrom(crypto.New(), rec)
	if err != nil {
		return nil, opError("read verifier", "", err)
	}
	return v, nil
}
