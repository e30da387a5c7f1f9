package crypto

import (
	"crypto/rand"
	"hash"
)

// Provider is every cryptographic operation the rest of Creto may perform.
// Callers choose algorithms by name (ParseAlgorithm) and hold typed keys;
// they never touch a primitive library, so swapping an implementation (for
// example a FIPS-validated one) changes only this package.
//
// Keys carry their algorithm, so operations on keys take no algorithm
// argument and cannot be asked to use a key under the wrong scheme. All
// methods are safe for concurrent use. They do no I/O and never block, so
// they take no context.Context; the gRPC adapter owns deadlines.
type Provider interface {
	// GenerateKey returns a random key pair for a signature or KEM algorithm.
	GenerateKey(alg Algorithm) (*PrivateKey, error)
	// GenerateSymmetricKey returns a random AEAD key.
	GenerateSymmetricKey(alg Algorithm) (*SymmetricKey, error)
	// DeriveSymmetricKey derives an AEAD key from a shared secret with
	// HKDF-SHA256; info separates the uses of one secret.
	DeriveSymmetricKey(alg Algorithm, secret, salt, info []byte) (*SymmetricKey, error)

	// Encrypt seals plaintext under a fresh random nonce and returns a
	// self-describing ciphertext (header || nonce || ciphertext || tag).
	// Random 96-bit nonces allow about 2^32 messages per key.
	Encrypt(key *SymmetricKey, plaintext, additionalData []byte) ([]byte, error)
	// Decrypt opens what Encrypt produced; additionalData must match.
	Decrypt(key *SymmetricKey, ciphertext, additionalData []byte) ([]byte, error)
	// Seal is the raw AEAD with a caller-managed nonce, for protocols that
	// derive nonces (chunk counters); reusing a nonce under one key breaks
	// both confidentiality and integrity.
	Seal(key *SymmetricKey, nonce, plaintext, additionalData []byte) ([]byte, error)
	// Open is the inverse of Seal.
	Open(key *SymmetricKey, nonce, ciphertext, additionalData []byte) ([]byte, error)

	// Sign signs message under an optional context string (at most 255
	// bytes) that separates domains: a signature made under one context
	// never verifies under another.
	Sign(key *PrivateKey, message, context []byte) ([]byte, error)
	// Verify returns nil if and only if signature is valid for message and
	// context under key. Every failure matches ErrInvalidSignature.
	Verify(key *PublicKey, message, context, signature []byte) error

	// Encapsulate returns a fresh 32-byte shared secret and the ciphertext
	// that carries it to the holder of the private key. Clear the secret
	// once it has been turned into a key.
	Encapsulate(key *PublicKey) (sharedSecret, ciphertext []byte, err error)
	// Decapsulate recovers the shared secret. For ML-KEM-768 and X-Wing a
	// tampered ciphertext yields an unrelated secret rather than an error
	// (implicit rejection); authenticate what the secret protects.
	Decapsulate(key *PrivateKey, ciphertext []byte) (sharedSecret []byte, err error)

	// Hash returns the 32-byte digest of data.
	Hash(alg Algorithm, data []byte) ([]byte, error)
	// NewHash returns a streaming hash, for data that does not fit in memory.
	NewHash(alg Algorithm) (hash.Hash, error)
	// HMAC returns the MAC of data; key may be any length.
	HMAC(alg Algorithm, key, data []byte) ([]byte, error)
	// VerifyHMAC compares in constant time; a mismatch matches ErrAuthentication.
	VerifyHMAC(alg Algorithm, key, data, mac []byte) error
	// HKDF derives length bytes (1..8160) from secret (RFC 5869).
	HKDF(alg Algorithm, secret, salt, info []byte, length int) ([]byte, error)

	// RandomBytes returns n bytes from the system CSPRNG.
	RandomBytes(n int) ([]byte, error)
	// Nonce returns a random nonce of the right size for an AEAD algorithm.
	Nonce(alg Algorithm) ([]byte, error)
}

// New returns the default Provider: circl for ML-DSA-65, ML-KEM-768, X-Wing
// and X25519, the standard library and x/crypto for the classical and
// symmetric primitives, zeebo/blake3 for BLAKE3.
func New() Provider { return provider{} }

// provider holds no state: every key carries its own parsed form, and
// randomness comes from crypto/rand.
type provider struct{}

func (provider) GenerateKey(alg Algorithm) (*PrivateKey, error) { return generateKey(alg) }

func (provider) GenerateSymmetricKey(alg Algorithm) (*SymmetricKey, error) {
	return generateSymmetricKey(alg)
}

func (provider) DeriveSymmetricKey(alg Algorithm, secret, salt, info []byte) (*SymmetricKey, error) {
	return deriveSymmetricKey(alg, secret, salt, info)
}

func (provider) Encrypt(key *SymmetricKey, plaintext, additionalData []byte) ([]byte, error) {
	return key.encrypt(plaintext, additionalData)
}

func (provider) Decrypt(key *SymmetricKey, ciphertext, additionalData []byte) ([]byte, error) {
	return key.decrypt(ciphertext, additionalData)
}

func (provider) Seal(key *SymmetricKey, nonce, plaintext, additionalData []byte) ([]byte, error) {
	return key.seal(nonce, plaintext, additionalData)
}

func (provider) Open(key *SymmetricKey, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	return key.open(nonce, ciphertext, additionalData)
}

func (provider) Sign(key *PrivateKey, message, context []byte) ([]byte, error) {
	return key.sign(message, context)
}

func (provider) Verify(key *PublicKey, message, context, signature []byte) error {
	return key.verify(message, context, signature)
}

// maxEncapSeed is the largest encapsulation randomness (X-Wing's 64 bytes),
// so the seed lives on the stack and is wiped after use.
const maxEncapSeed = 64

func (provider) Encapsulate(key *PublicKey) (sharedSecret, ciphertext []byte, err error) {
	n := 0
	if key != nil && key.scheme != nil {
		n = key.scheme.encapSeedSize
	}
	var seed [maxEncapSeed]byte
	_, _ = rand.Read(seed[:n]) // crypto/rand.Read never fails; it aborts the program instead
	defer clear(seed[:n])
	return key.encapsulate(seed[:n])
}

func (provider) Decapsulate(key *PrivateKey, ciphertext []byte) ([]byte, error) {
	return key.decapsulate(ciphertext)
}

func (provider) Hash(alg Algorithm, data []byte) ([]byte, error) { return sum(alg, data) }

func (provider) NewHash(alg Algorithm) (hash.Hash, error) { return newHash(alg) }

func (provider) HMAC(alg Algorithm, key, data []byte) ([]byte, error) { return mac(alg, key, data) }

func (provider) VerifyHMAC(alg Algorithm, key, data, tag []byte) error {
	return verifyMAC(alg, key, data, tag)
}

func (provider) HKDF(alg Algorithm, secret, salt, info []byte, length int) ([]byte, error) {
	return kdf(alg, secret, salt, info, length)
}

// maxRandomBytes bounds one request so a bad length from a caller cannot
// ask for gigabytes.
const maxRandomBytes = 1 << 20

func (provider) RandomBytes(n int) ([]byte, error) {
	if n < 0 || n > maxRandomBytes {
		return nil, opError("random bytes", 0, detailError(ErrMalformed, "length %d outside 0..%d", n, maxRandomBytes))
	}
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails; it aborts the program instead
	return b, nil
}

func (provider) Nonce(alg Algorithm) ([]byte, error) {
	s, err := aeadFor("nonce", alg)
	if err != nil {
		return nil, err
	}
	b := make([]byte, s.nonceSize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails; it aborts the program instead
	return b, nil
}
