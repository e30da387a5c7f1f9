package nhi

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// Every agent has a signing key and a KEM key per key version. The signing
// key is the ed25519+ml-dsa-65 composite and the KEM key is X-Wing, so the
// seed's four keys (Ed25519, ML-DSA-65, X25519, ML-KEM-768) exist as the
// halves of two hybrid keys: each hybrid stays secure while either of its
// halves does, and no caller has to combine two algorithms itself.
const (
	signingAlgorithm = crypto.Ed25519MLDSA65
	kemAlgorithm     = crypto.XWing
)

// signatureSize is the length of an encoded signature of signingAlgorithm:
// the crypto package's 4-byte header and the composite's 3309-byte ML-DSA-65
// and 64-byte Ed25519 signatures (docs/crypto.md). Tokens and delegations
// carry it at a fixed length; a test checks it against a real signature.
const signatureSize = 4 + 3309 + 64

// Domain-separation contexts for signatures. Each kind of signed object
// has its own, so an agent's signature over an arbitrary message can never
// be replayed as a delegation, nor a delegation as a token.
var (
	contextAgentMessage = []byte("creto-nhi-message/v1")
	contextDelegation   = []byte("creto-nhi-delegation/v1")
	contextToken        = []byte("creto-nhi-token/v1")
)

// keyRecord is the stored form of one key version. Public keys and the
// validity window are plaintext; private keys are AES-256-GCM ciphertexts
// under the node's data key, bound to the record's store key and role.
type keyRecord struct {
	Version   uint32 `json:"version"`
	NotBefore int64  `json:"not_before_ms"`
	// NotAfter of 0 means no end (node keys until they are rotated).
	NotAfter      int64  `json:"not_after_ms,omitempty"`
	SigningPublic []byte `json:"signing_public"`
	KEMPublic     []byte `json:"kem_public,omitempty"`
	// SigningSealed is dropped once the version stops being current:
	// only the current key signs.
	SigningSealed []byte `json:"signing_sealed,omitempty"`
	// KEMSealed is kept for older versions while the agent lives, since
	// data may still be encrypted to them; revocation drops it.
	KEMSealed []byte `json:"kem_sealed,omitempty"`
}

func (r *keyRecord) validAt(ms int64) bool {
	return ms >= r.NotBefore && (r.NotAfter == 0 || ms < r.NotAfter)
}

// keyVersion is a key record with its signing public key parsed once:
// parsing an ML-DSA-65 key costs more than verifying with it.
type keyVersion struct {
	rec     keyRecord
	storeID []byte // the record's store key, bound into the sealed blobs
	signing *crypto.PublicKey

	kemOnce sync.Once
	kem     *crypto.PublicKey
	kemErr  error
}

func (v *keyVersion) kemKey() (*crypto.PublicKey, error) {
	v.kemOnce.Do(func() {
		if len(v.rec.KEMPublic) == 0 {
			v.kemErr = detail(ErrNotFound, "no KEM key")
			return
		}
		v.kem, v.kemErr = crypto.ParsePublicKey(v.rec.KEMPublic)
	})
	return v.kem, v.kemErr
}

// keyRing is every stored key version of one owner (an agent or the node),
// oldest first. A ring is immutable once built except for its signer,
// which is unsealed on first use and then kept.
type keyRing struct {
	versions []*keyVersion

	mu     sync.Mutex
	signer *crypto.PrivateKey
}

func (r *keyRing) current() *keyVersion {
	if len(r.versions) == 0 {
		return nil
	}
	return r.versions[len(r.versions)-1]
}

func (r *keyRing) version(v uint32) *keyVersion {
	for _, kver := range r.versions {
		if kver.rec.Version == v {
			return kver
		}
	}
	return nil
}

// destroy wipes the cached signer. Only Close calls it, once nothing else
// can be using the key.
func (r *keyRing) destroy() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signer.Destroy()
	r.signer = nil
}

// PublicKeys is one version of an agent's public keys (seed §6.2
// AgentPublicKeys) with its validity window.
type PublicKeys struct {
	AgentID string
	Version uint32
	// Signing is the ed25519+ml-dsa-65 composite key agent signatures and
	// delegations verify under.
	Signing *crypto.PublicKey
	// KEM is the X-Wing key to encapsulate secrets to the agent.
	KEM *crypto.PublicKey
	// The keys are valid for signatures checked from NotBefore until
	// NotAfter.
	NotBefore, NotAfter time.Time
}

// ComponentKeys are the four classical and post-quantum keys inside an
// agent's two hybrid keys, for systems that take them separately (the
// seed's AgentPublicKeys fields). Creto itself only ever uses the hybrids.
type ComponentKeys struct {
	Ed25519, MLDSA65, X25519, MLKEM768 *crypto.PublicKey
}

// classicalKeySize is the size of the Ed25519 and X25519 halves. Both
// hybrids put the post-quantum key first and the 32-byte classical key
// last (docs/crypto.md: ed25519+ml-dsa-65 is mldsaPK ‖ edPK; X-Wing, per
// draft-connolly-cfrg-xwing-kem, is mlkemPK ‖ x25519PK).
const classicalKeySize = 32

// Components splits the hybrid keys into their halves.
func (k PublicKeys) Components() (ComponentKeys, error) {
	var c ComponentKeys
	var err error
	if c.MLDSA65, c.Ed25519, err = splitHybrid(k.Signing, crypto.MLDSA65, crypto.Ed25519); err != nil {
		return ComponentKeys{}, err
	}
	if c.MLKEM768, c.X25519, err = splitHybrid(k.KEM, crypto.MLKEM768, crypto.X25519); err != nil {
		return ComponentKeys{}, err
	}
	return c, nil
}

func splitHybrid(k *crypto.PublicKey, pq, classical crypto.Algorithm) (*crypto.PublicKey, *crypto.PublicKey, error) {
	if k == nil {
		return nil, nil, opError("split key", "", detail(ErrInvalidArgument, "no key"))
	}
	raw := k.Raw()
	cut := len(raw) - classicalKeySize
	if cut <= 0 {
		return nil, nil, opError("split key", "", detail(ErrInvalidArgument, "%v key too short", k.Algorithm()))
	}
	p, err := crypto.NewPublicKey(pq, raw[:cut])
	if err != nil {
		return nil, nil, opError("split key", "", err)
	}
	c, err := crypto.NewPublicKey(classical, raw[cut:])
	if err != nil {
		return nil, nil, opError("split key", "", err)
	}
	return p, c, nil
}

// Store keys of key records. An agent id is followed by a NUL, which ids
// may not contain, so one agent's prefix never covers another's keys
// ("a" vs "a/b"). Versions are big-endian so they sort numerically.
func agentKeyPrefix(agentID string) []byte {
	return append([]byte(prefixAgentKeys+agentID), 0)
}

func keyRecordKey(prefix []byte, version uint32) []byte {
	return append(append([]byte(nil), prefix...), byte(version>>24), byte(version>>16), byte(version>>8), byte(version))
}

// sealLabel binds a sealed private key to the record it lives in and its
// role, so a blob copied into another agent's or version's record (by
// someone who can write the store) fails to open instead of signing.
func sealLabel(storeID []byte, role string) []byte {
	l := append([]byte("creto-nhi/private-key/v1\x00"), storeID...)
	return append(append(l, 0), role...)
}

const (
	roleSigning = "signing"
	roleKEM     = "kem"
)

// newKeyVersion generates a key version for the ring stored under prefix
// and returns its record (private keys sealed) and the new signing key.
// withKEM is false for the node, which only signs.
func (s *Service) newKeyVersion(prefix []byte, version uint32, notBefore, notAfter int64, withKEM bool) (*keyVersion, *crypto.PrivateKey, error) {
	storeID := keyRecordKey(prefix, version)
	signer, err := s.p.GenerateKey(signingAlgorithm)
	if err != nil {
		return nil, nil, err
	}
	rec := keyRecord{Version: version, NotBefore: notBefore, NotAfter: notAfter, SigningPublic: signer.Public().Bytes()}
	if rec.SigningSealed, err = s.sealPrivate(signer, storeID, roleSigning); err != nil {
		signer.Destroy()
		return nil, nil, err
	}
	v := &keyVersion{rec: rec, storeID: storeID, signing: signer.Public()}
	if withKEM {
		kem, err := s.p.GenerateKey(kemAlgorithm)
		if err != nil {
			signer.Destroy()
			return nil, nil, err
		}
		v.rec.KEMPublic = kem.Public().Bytes()
		v.rec.KEMSealed, err = s.sealPrivate(kem, storeID, roleKEM)
		v.kemOnce.Do(func() { v.kem = kem.Public() })
		kem.Destroy()
		if err != nil {
			signer.Destroy()
			return nil, nil, err
		}
	}
	return v, signer, nil
}

func (s *Service) sealPrivate(k *crypto.PrivateKey, storeID []byte, role string) ([]byte, error) {
	enc, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	defer clear(enc)
	return s.p.Encrypt(s.dek, enc, sealLabel(storeID, role))
}

// unsealSigner opens the version's signing key and checks it against the
// public key on record, so a swapped or corrupted blob cannot sign.
func (s *Service) unsealSigner(v *keyVersion) (*crypto.PrivateKey, error) {
	if len(v.rec.SigningSealed) == 0 {
		return nil, detail(ErrNotFound, "no private signing key for key version %d", v.rec.Version)
	}
	enc, err := s.p.Decrypt(s.dek, v.rec.SigningSealed, sealLabel(v.storeID, roleSigning))
	if err != nil {
		return nil, fmt.Errorf("%w: private key of version %d does not open: %w", ErrSealed, v.rec.Version, err)
	}
	defer clear(enc)
	k, err := crypto.ParsePrivateKey(enc)
	if err != nil {
		return nil, err
	}
	if !k.Public().Equal(v.signing) {
		k.Destroy()
		return nil, fmt.Errorf("%w: private key of version %d does not match its public key", ErrSealed, v.rec.Version)
	}
	return k, nil
}

// signerFor returns the ring's current signing key, unsealing it on first
// use. The caller has checked that the current version is valid.
func (s *Service) signerFor(r *keyRing) (*crypto.PrivateKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.signer != nil {
		return r.signer, nil
	}
	k, err := s.unsealSigner(r.current())
	if err != nil {
		return nil, err
	}
	r.signer = k
	return k, nil
}

// loadRing reads and parses every key version stored under prefix.
// Versions whose window has ended are kept on record but not parsed: they
// can no longer verify anything.
func (s *Service) loadRing(ctx context.Context, prefix []byte) (*keyRing, error) {
	nowMS := s.nowMS()
	r := &keyRing{}
	err := s.store.Scan(ctx, prefix, func(key, val []byte) error {
		var rec keyRecord
		if err := json.Unmarshal(val, &rec); err != nil {
			return fmt.Errorf("key record: %w", err)
		}
		v := &keyVersion{rec: rec, storeID: append([]byte(nil), key...)}
		if rec.NotAfter == 0 || nowMS < rec.NotAfter {
			pub, err := crypto.ParsePublicKey(rec.SigningPublic)
			if err != nil {
				return fmt.Errorf("key record %d: %w", rec.Version, err)
			}
			v.signing = pub
		}
		r.versions = append(r.versions, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// agentRing returns the agent's parsed keys from the cache, loading them
// on a miss.
func (s *Service) agentRing(ctx context.Context, agentID string) (*keyRing, error) {
	if r, ok := s.rings.get(agentID); ok {
		return r, nil
	}
	gen := s.keyGen.Load()
	r, err := s.loadRing(ctx, agentKeyPrefix(agentID))
	if err != nil {
		return nil, err
	}
	if len(r.versions) == 0 {
		return nil, detail(ErrNotFound, "no keys")
	}
	s.rings.putIf(agentID, r, func() bool { return s.keyGen.Load() == gen })
	return r, nil
}

// invalidateRing drops an agent's cached keys after a write to them.
// The generation bump comes first; see lru.putIf.
func (s *Service) invalidateRing(agentID string) {
	s.keyGen.Add(1)
	s.rings.remove(agentID)
}

func encodeKeyRecord(r *keyRecord) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// Every field is an integer or a byte slice.
		panic(fmt.Sprintf("nhi: encode key record: %v", err))
	}
	return b
}

// rotate appends a new key version to the ring stored under prefix, ends
// every older version's window at most overlap from now and drops their
// private signing keys. It returns the new version and its signing key.
func (s *Service) rotate(ctx context.Context, b *kv.Batch, prefix []byte, overlap time.Duration, validity time.Duration, withKEM bool) (*keyVersion, *crypto.PrivateKey, error) {
	if overlap < 0 {
		return nil, nil, detail(ErrInvalidArgument, "negative overlap")
	}
	ring, err := s.loadRing(ctx, prefix)
	if err != nil {
		return nil, nil, err
	}
	nowMS := s.nowMS()
	var next uint32 = 1
	if cur := ring.current(); cur != nil {
		next = cur.rec.Version + 1
	}
	end := nowMS + overlap.Milliseconds()
	for _, v := range ring.versions {
		rec := v.rec
		if rec.NotAfter == 0 || rec.NotAfter > end {
			rec.NotAfter = end
		}
		rec.SigningSealed = nil
		b.Set(v.storeID, encodeKeyRecord(&rec))
	}
	var notAfter int64
	if validity > 0 {
		notAfter = nowMS + validity.Milliseconds()
	}
	v, signer, err := s.newKeyVersion(prefix, next, nowMS, notAfter, withKEM)
	if err != nil {
		return nil, nil, err
	}
	b.Set(v.storeID, encodeKeyRecord(&v.rec))
	return v, signer, nil
}

func (s *Service) publicKeys(agentID string, v *keyVersion) (PublicKeys, error) {
	kem, err := v.kemKey()
	if err != nil {
		return PublicKeys{}, err
	}
	pk := PublicKeys{AgentID: agentID, Version: v.rec.Version, Signing: v.signing, KEM: kem,
		NotBefore: time.UnixMilli(v.rec.NotBefore).UTC()}
	if v.rec.NotAfter != 0 {
		pk.NotAfter = time.UnixMilli(v.rec.NotAfter).UTC()
	}
	return pk, nil
}
