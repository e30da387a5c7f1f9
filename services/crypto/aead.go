package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"math"

	"golang.org/x/crypto/chacha20poly1305"
)

// aeadScheme describes one AEAD. Both have 256-bit keys, 96-bit nonces and
// 128-bit tags, but the sizes stay per scheme so adding, say, XChaCha20
// touches only this table.
type aeadScheme struct {
	keySize   int
	nonceSize int
	overhead  int
	new       func(key []byte) (cipher.AEAD, error)
}

var aeadSchemes = map[Algorithm]*aeadScheme{
	AES256GCM: {
		keySize: 32, nonceSize: 12, overhead: 16,
		new: func(key []byte) (cipher.AEAD, error) {
			block, err := aes.NewCipher(key)
			if err != nil {
				return nil, err
			}
			return cipher.NewGCM(block)
		},
	},
	ChaCha20Poly1305: {
		keySize: chacha20poly1305.KeySize, nonceSize: chacha20poly1305.NonceSize, overhead: chacha20poly1305.Overhead,
		new: chacha20poly1305.New,
	},
}

func aeadFor(op string, alg Algorithm) (*aeadScheme, error) {
	if s, ok := aeadSchemes[alg]; ok {
		return s, nil
	}
	return nil, unsupported(op, alg, KindAEAD)
}

// SymmetricKey is an AEAD key bound to its algorithm, so an AES key can
// never be used as a ChaCha20 key or vice versa. The cipher is set up once
// at construction (the AES key schedule is not free); encryption and
// decryption are safe for concurrent use, Destroy is not.
type SymmetricKey struct {
	alg    Algorithm
	scheme *aeadScheme
	key    []byte // wiped by Destroy
	aead   cipher.AEAD
}

func generateSymmetricKey(alg Algorithm) (*SymmetricKey, error) {
	s, err := aeadFor("generate key", alg)
	if err != nil {
		return nil, err
	}
	key := make([]byte, s.keySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails; it aborts the program instead
	return newSymmetricKey("generate key", alg, s, key)
}

// NewSymmetricKey wraps raw key bytes (copied) for alg.
func NewSymmetricKey(alg Algorithm, key []byte) (*SymmetricKey, error) {
	const op = "new symmetric key"
	s, err := aeadFor(op, alg)
	if err != nil {
		return nil, err
	}
	if len(key) != s.keySize {
		return nil, opError(op, alg, detailError(ErrInvalidKey, "%d bytes, want %d", len(key), s.keySize))
	}
	return newSymmetricKey(op, alg, s, bytes.Clone(key))
}

// ParseSymmetricKey parses an encoding produced by MarshalSymmetricKey.
func ParseSymmetricKey(b []byte) (*SymmetricKey, error) {
	const op = "parse symmetric key"
	alg, body, err := decode(b, objSymmetricKey)
	if err != nil {
		return nil, opError(op, alg, err)
	}
	s, err := aeadFor(op, alg)
	if err != nil {
		return nil, err
	}
	if err := exactLength(objSymmetricKey, alg, body, s.keySize); err != nil {
		return nil, opError(op, alg, err)
	}
	return newSymmetricKey(op, alg, s, bytes.Clone(body))
}

// newSymmetricKey takes ownership of key, whose length is valid.
func newSymmetricKey(op string, alg Algorithm, s *aeadScheme, key []byte) (*SymmetricKey, error) {
	a, err := s.new(key)
	if err != nil {
		clear(key)
		return nil, opError(op, alg, detailError(ErrInvalidKey, "%v", err))
	}
	return &SymmetricKey{alg: alg, scheme: s, key: key, aead: a}, nil
}

// MarshalSymmetricKey returns header || key. Like MarshalPrivateKey, the
// result is secret and the call is deliberately explicit.
func MarshalSymmetricKey(k *SymmetricKey) ([]byte, error) {
	if err := k.usable("marshal symmetric key"); err != nil {
		return nil, err
	}
	return encode(objSymmetricKey, k.alg, k.key), nil
}

// Algorithm returns the key's algorithm.
func (k *SymmetricKey) Algorithm() Algorithm { return k.alg }

// Destroy overwrites this package's copy of the key and makes the key
// unusable. The cipher's own expanded key is beyond reach (see
// docs/crypto.md) and is only released to the garbage collector.
func (k *SymmetricKey) Destroy() {
	if k == nil {
		return
	}
	clear(k.key)
	k.key = nil
	k.aead = nil
}

// String never prints key material.
func (k *SymmetricKey) String() string {
	if k == nil {
		return "crypto.SymmetricKey(nil)"
	}
	return fmt.Sprintf("crypto.SymmetricKey(%v)", k.alg)
}

// GoString keeps %#v from printing the key.
func (k *SymmetricKey) GoString() string { return k.String() }

func (k *SymmetricKey) usable(op string) error {
	if k == nil {
		return opError(op, 0, detailError(ErrInvalidKey, "nil key"))
	}
	if k.aead == nil {
		return opError(op, k.alg, detailError(ErrInvalidKey, "key destroyed"))
	}
	return nil
}

// maxPlaintext keeps header + nonce + plaintext + tag inside an int and far
// below GCM's 64 GiB per-message limit; bigger objects must be chunked.
const maxPlaintext = math.MaxInt32

// encrypt draws a random nonce and returns header || nonce || ciphertext.
func (k *SymmetricKey) encrypt(plaintext, additionalData []byte) ([]byte, error) {
	const op = "encrypt"
	if err := k.usable(op); err != nil {
		return nil, err
	}
	if len(plaintext) > maxPlaintext {
		return nil, opError(op, k.alg, detailError(ErrMalformed, "plaintext over %d bytes", maxPlaintext))
	}
	s := k.scheme
	out := newEncoding(objAEADMessage, k.alg, s.nonceSize, len(plaintext)+s.overhead)
	nonce := out[headerSize:]
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails; it aborts the program instead
	return k.aead.Seal(out, nonce, plaintext, additionalData), nil
}

func (k *SymmetricKey) decrypt(ciphertext, additionalData []byte) ([]byte, error) {
	const op = "decrypt"
	if err := k.usable(op); err != nil {
		return nil, err
	}
	alg, body, err := decode(ciphertext, objAEADMessage)
	if err != nil {
		return nil, opError(op, k.alg, err)
	}
	if alg != k.alg {
		return nil, opError(op, k.alg, ErrAuthentication, detailError(ErrAlgorithmMismatch, "ciphertext is %v", alg))
	}
	s := k.scheme
	if len(body) < s.nonceSize+s.overhead {
		return nil, opError(op, k.alg, detailError(ErrMalformed, "%d bytes, shorter than nonce and tag", len(body)))
	}
	pt, err := k.aead.Open(nil, body[:s.nonceSize], body[s.nonceSize:], additionalData)
	if err != nil {
		return nil, opError(op, k.alg, ErrAuthentication)
	}
	return pt, nil
}

// seal is the raw AEAD with a caller-chosen nonce and no framing.
func (k *SymmetricKey) seal(nonce, plaintext, additionalData []byte) ([]byte, error) {
	const op = "seal"
	if err := k.checkNonce(op, nonce); err != nil {
		return nil, err
	}
	if len(plaintext) > maxPlaintext {
		return nil, opError(op, k.alg, detailError(ErrMalformed, "plaintext over %d bytes", maxPlaintext))
	}
	return k.aead.Seal(nil, nonce, plaintext, additionalData), nil
}

func (k *SymmetricKey) open(nonce, ciphertext, additionalData []byte) ([]byte, error) {
	const op = "open"
	if err := k.checkNonce(op, nonce); err != nil {
		return nil, err
	}
	if len(ciphertext) < k.scheme.overhead {
		return nil, opError(op, k.alg, detailError(ErrMalformed, "%d bytes, shorter than the tag", len(ciphertext)))
	}
	pt, err := k.aead.Open(nil, nonce, ciphertext, additionalData)
	if err != nil {
		return nil, opError(op, k.alg, ErrAuthentication)
	}
	return pt, nil
}

func (k *SymmetricKey) checkNonce(op string, nonce []byte) error {
	if err := k.usable(op); err != nil {
		return err
	}
	if len(nonce) != k.scheme.nonceSize {
		return opError(op, k.alg, detailError(ErrMalformed, "nonce is %d bytes, want %d", len(nonce), k.scheme.nonceSize))
	}
	return nil
}
