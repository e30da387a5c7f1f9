package crypto

import (
	"bytes"
	"crypto/rand"
	"fmt"
)

// destroyer is what every parsed private key can do: overwrite its secret
// state as far as the underlying library lets us reach it.
type destroyer interface{ destroy() }

// asymmetricScheme describes one signature or KEM algorithm: its sizes and
// how to turn raw bytes into the library's parsed key objects.
type asymmetricScheme struct {
	seedSize      int // the private key encoding is the seed the pair derives from
	publicSize    int
	outputSize    int // signature size, or KEM ciphertext size
	encapSeedSize int // KEM only: randomness one encapsulation consumes

	// newPublic parses a raw public key of exactly publicSize bytes into a
	// verifier or encapsulator. It may keep raw, which the caller owns.
	newPublic func(raw []byte) (any, error)
	// newPrivate derives the key pair from a seed of exactly seedSize bytes
	// and returns the parsed private key (a signer or decapsulator), the raw
	// public key, and — only where it shares nothing that destroy wipes —
	// the library's parsed public key, saving a second parse. A nil parsed
	// key means "parse the raw bytes with newPublic".
	newPrivate func(seed []byte) (key destroyer, pubRaw []byte, pub any)
}

var asymmetricSchemes = map[Algorithm]*asymmetricScheme{
	Ed25519:        &ed25519Scheme,
	MLDSA65:        &mldsa65Scheme,
	Ed25519MLDSA65: &compositeScheme,
	X25519:         &x25519Scheme,
	MLKEM768:       &mlkem768Scheme,
	XWing:          &xwingScheme,
}

func asymmetricFor(op string, alg Algorithm) (*asymmetricScheme, error) {
	if s, ok := asymmetricSchemes[alg]; ok {
		return s, nil
	}
	return nil, opError(op, alg, detailError(ErrUnsupportedAlgorithm, "not a signature or KEM algorithm"))
}

// PublicKey is a parsed signature or KEM public key. It is immutable and
// safe for concurrent use; parse it once and reuse it, because parsing
// (e.g. expanding the ML-DSA matrix) costs more than a verification.
type PublicKey struct {
	alg    Algorithm
	scheme *asymmetricScheme
	enc    []byte // header || raw, never modified after construction
	key    any    // verifier or encapsulator
}

// ParsePublicKey parses an encoding produced by PublicKey.Bytes. The length
// must be exact for the algorithm in the header.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	const op = "parse public key"
	alg, body, err := decode(b, objPublicKey)
	if err != nil {
		return nil, opError(op, alg, err)
	}
	s, err := asymmetricFor(op, alg)
	if err != nil {
		return nil, err
	}
	if err := exactLength(objPublicKey, alg, body, s.publicSize); err != nil {
		return nil, opError(op, alg, err)
	}
	return newPublicKey(op, alg, s, bytes.Clone(b))
}

// NewPublicKey wraps a raw public key from another system: the 32-byte
// Ed25519 or X25519 key, the FIPS 203/204 encoding, the X-Wing encoding, or
// the composite's mldsaPK || edPK.
func NewPublicKey(alg Algorithm, raw []byte) (*PublicKey, error) {
	const op = "new public key"
	s, err := asymmetricFor(op, alg)
	if err != nil {
		return nil, err
	}
	if err := exactLength(objPublicKey, alg, raw, s.publicSize); err != nil {
		return nil, opError(op, alg, err)
	}
	return newPublicKey(op, alg, s, encode(objPublicKey, alg, raw))
}

// newPublicKey takes ownership of enc, whose header and length are valid.
func newPublicKey(op string, alg Algorithm, s *asymmetricScheme, enc []byte) (*PublicKey, error) {
	key, err := s.newPublic(enc[headerSize:])
	if err != nil {
		return nil, opError(op, alg, err)
	}
	return &PublicKey{alg: alg, scheme: s, enc: enc, key: key}, nil
}

// Algorithm returns the key's algorithm.
func (k *PublicKey) Algorithm() Algorithm { return k.alg }

// Bytes returns the self-describing encoding (header || raw) that
// ParsePublicKey reads.
func (k *PublicKey) Bytes() []byte { return bytes.Clone(k.enc) }

// Raw returns the algorithm's own encoding without the header, for systems
// that identify the algorithm out of band (a C2SP note verifier key, an
// X.509 SubjectPublicKeyInfo).
func (k *PublicKey) Raw() []byte { return bytes.Clone(k.enc[headerSize:]) }

// Equal reports whether k and other are the same key of the same algorithm.
func (k *PublicKey) Equal(other *PublicKey) bool {
	return k != nil && other != nil && bytes.Equal(k.enc, other.enc)
}

// String identifies the key without dumping kilobytes of key material.
func (k *PublicKey) String() string {
	if k == nil {
		return "crypto.PublicKey(nil)"
	}
	return fmt.Sprintf("crypto.PublicKey(%v)", k.alg)
}

// PrivateKey is a signature or KEM private key. Its encoding is the seed the
// key pair derives from (FIPS 203/204 seed format, the RFC 8032 / RFC 7748
// 32-byte key, or the composite's two seeds), so an encoding can never
// disagree with its public key. Signing and decapsulation are safe for
// concurrent use; Destroy is not, and must come after the last use.
type PrivateKey struct {
	alg    Algorithm
	scheme *asymmetricScheme
	seed   []byte    // wiped by Destroy
	key    destroyer // signer or decapsulator; nil once destroyed
	public *PublicKey
}

func generateKey(alg Algorithm) (*PrivateKey, error) {
	s, err := asymmetricFor("generate key", alg)
	if err != nil {
		return nil, err
	}
	seed := make([]byte, s.seedSize)
	_, _ = rand.Read(seed) // crypto/rand.Read never fails; it aborts the program instead
	return newPrivateKey("generate key", alg, s, seed)
}

// NewPrivateKey derives a key pair from a seed, the same bytes
// MarshalPrivateKey emits after the header: use it for deterministic keys
// (seeds from a KDF or a vault) and known-answer tests. seed is copied.
func NewPrivateKey(alg Algorithm, seed []byte) (*PrivateKey, error) {
	const op = "new private key"
	s, err := asymmetricFor(op, alg)
	if err != nil {
		return nil, err
	}
	if err := exactLength(objPrivateKey, alg, seed, s.seedSize); err != nil {
		return nil, opError(op, alg, err)
	}
	return newPrivateKey(op, alg, s, bytes.Clone(seed))
}

// ParsePrivateKey parses an encoding produced by MarshalPrivateKey.
func ParsePrivateKey(b []byte) (*PrivateKey, error) {
	const op = "parse private key"
	alg, body, err := decode(b, objPrivateKey)
	if err != nil {
		return nil, opError(op, alg, err)
	}
	s, err := asymmetricFor(op, alg)
	if err != nil {
		return nil, err
	}
	if err := exactLength(objPrivateKey, alg, body, s.seedSize); err != nil {
		return nil, opError(op, alg, err)
	}
	return newPrivateKey(op, alg, s, bytes.Clone(body))
}

// newPrivateKey takes ownership of seed, whose length is valid.
func newPrivateKey(op string, alg Algorithm, s *asymmetricScheme, seed []byte) (*PrivateKey, error) {
	key, pubRaw, parsed := s.newPrivate(seed)
	enc := encode(objPublicKey, alg, pubRaw)
	pub := &PublicKey{alg: alg, scheme: s, enc: enc, key: parsed}
	if parsed == nil {
		var err error
		if pub, err = newPublicKey(op, alg, s, enc); err != nil {
			key.destroy()
			clear(seed)
			return nil, err
		}
	}
	return &PrivateKey{alg: alg, scheme: s, seed: seed, key: key, public: pub}, nil
}

// MarshalPrivateKey returns the key's encoding, header || seed. The result
// is secret: encrypt it before it leaves memory, and clear it when done.
// It is a function rather than a method so that exporting a secret is
// always a visible, deliberate call and never an encoding interface that a
// serializer or logger picks up on its own.
func MarshalPrivateKey(k *PrivateKey) ([]byte, error) {
	if err := k.usable("marshal private key"); err != nil {
		return nil, err
	}
	return encode(objPrivateKey, k.alg, k.seed), nil
}

// Algorithm returns the key's algorithm.
func (k *PrivateKey) Algorithm() Algorithm { return k.alg }

// Public returns the matching public key. It stays valid after Destroy.
func (k *PrivateKey) Public() *PublicKey { return k.public }

// Destroy overwrites the seed and the parsed key state this package can
// reach, then makes the key unusable. docs/crypto.md lists what Go cannot
// guarantee beyond that.
func (k *PrivateKey) Destroy() {
	if k == nil {
		return
	}
	if k.key != nil {
		k.key.destroy()
		k.key = nil
	}
	clear(k.seed)
	k.seed = nil
}

// String never prints key material, so a key that ends up in a log line
// leaks nothing.
func (k *PrivateKey) String() string {
	if k == nil {
		return "crypto.PrivateKey(nil)"
	}
	return fmt.Sprintf("crypto.PrivateKey(%v)", k.alg)
}

// GoString keeps %#v from printing the seed.
func (k *PrivateKey) GoString() string { return k.String() }

func (k *PrivateKey) usable(op string) error {
	if k == nil {
		return opError(op, 0, detailError(ErrInvalidKey, "nil key"))
	}
	if k.key == nil {
		return opError(op, k.alg, detailError(ErrInvalidKey, "key destroyed"))
	}
	return nil
}

func (k *PrivateKey) sign(msg, context []byte) ([]byte, error) {
	const op = "sign"
	if err := k.usable(op); err != nil {
		return nil, err
	}
	s, ok := k.key.(signer)
	if !ok {
		return nil, opError(op, k.alg, detailError(ErrUnsupportedAlgorithm, "not a signature key"))
	}
	if len(context) > maxContextSize {
		return nil, opError(op, k.alg, detailError(ErrMalformed, "context is %d bytes, limit %d", len(context), maxContextSize))
	}
	sig := newEncoding(objSignature, k.alg, k.scheme.outputSize, 0)
	if err := s.sign(msg, context, sig[headerSize:]); err != nil {
		return nil, opError(op, k.alg, err)
	}
	return sig, nil
}

func (k *PublicKey) verify(msg, context, sig []byte) error {
	const op = "verify"
	if k == nil {
		return opError(op, 0, ErrInvalidSignature, detailError(ErrInvalidKey, "nil key"))
	}
	v, ok := k.key.(verifier)
	if !ok {
		return opError(op, k.alg, ErrInvalidSignature, detailError(ErrUnsupportedAlgorithm, "not a signature key"))
	}
	alg, body, err := decode(sig, objSignature)
	if err != nil {
		return opError(op, k.alg, ErrInvalidSignature, err)
	}
	if alg != k.alg {
		return opError(op, k.alg, ErrInvalidSignature, detailError(ErrAlgorithmMismatch, "signature is %v", alg))
	}
	if err := exactLength(objSignature, alg, body, k.scheme.outputSize); err != nil {
		return opError(op, k.alg, ErrInvalidSignature, err)
	}
	if len(context) > maxContextSize {
		return opError(op, k.alg, ErrInvalidSignature, detailError(ErrMalformed, "context is %d bytes, limit %d", len(context), maxContextSize))
	}
	if !v.verify(msg, context, body) {
		return opError(op, k.alg, ErrInvalidSignature)
	}
	return nil
}

// encapsulate runs the KEM with the given randomness, which must be exactly
// encapSeedSize bytes. Production callers pass fresh random bytes; the
// known-answer tests pass the vectors' seeds.
func (k *PublicKey) encapsulate(seed []byte) (sharedSecret, ciphertext []byte, err error) {
	const op = "encapsulate"
	if k == nil {
		return nil, nil, opError(op, 0, detailError(ErrInvalidKey, "nil key"))
	}
	e, ok := k.key.(encapsulator)
	if !ok {
		return nil, nil, opError(op, k.alg, detailError(ErrUnsupportedAlgorithm, "not a KEM key"))
	}
	ct := newEncoding(objKEMCiphertext, k.alg, k.scheme.outputSize, 0)
	ss := make([]byte, sharedSecretSize)
	if err := e.encapsulate(seed, ct[headerSize:], ss); err != nil {
		clear(ss)
		return nil, nil, opError(op, k.alg, err)
	}
	return ss, ct, nil
}

func (k *PrivateKey) decapsulate(ciphertext []byte) ([]byte, error) {
	const op = "decapsulate"
	if err := k.usable(op); err != nil {
		return nil, err
	}
	d, ok := k.key.(decapsulator)
	if !ok {
		return nil, opError(op, k.alg, detailError(ErrUnsupportedAlgorithm, "not a KEM key"))
	}
	alg, body, err := decode(ciphertext, objKEMCiphertext)
	if err != nil {
		return nil, opError(op, k.alg, err)
	}
	if alg != k.alg {
		return nil, opError(op, k.alg, ErrMalformed, detailError(ErrAlgorithmMismatch, "ciphertext is %v", alg))
	}
	if err := exactLength(objKEMCiphertext, alg, body, k.scheme.outputSize); err != nil {
		return nil, opError(op, k.alg, err)
	}
	ss := make([]byte, sharedSecretSize)
	if err := d.decapsulate(body, ss); err != nil {
		clear(ss)
		return nil, opError(op, k.alg, err)
	}
	return ss, nil
}
