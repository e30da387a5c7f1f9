package crypto

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha3"
	"hash"

	"github.com/zeebo/blake3"
)

// digestSize is the output of all three hashes; BLAKE3 is used at its
// standard 256-bit length.
const digestSize = 32

// sum is the one-shot hash. A switch rather than a table keeps the dispatch
// to a few instructions, which matters for small inputs (see the 1 KiB
// benchmarks).
func sum(alg Algorithm, data []byte) ([]byte, error) {
	var d [digestSize]byte
	switch alg {
	case SHA256:
		d = sha256.Sum256(data)
	case SHA3_256:
		d = sha3.Sum256(data)
	case BLAKE3:
		d = blake3.Sum256(data)
	default:
		return nil, unsupported("hash", alg, KindHash)
	}
	return d[:], nil
}

// newHash returns a streaming hash for inputs that do not fit in memory.
func newHash(alg Algorithm) (hash.Hash, error) {
	switch alg {
	case SHA256:
		return sha256.New(), nil
	case SHA3_256:
		return sha3.New256(), nil
	case BLAKE3:
		return blake3.New(), nil
	default:
		return nil, unsupported("new hash", alg, KindHash)
	}
}

func mac(alg Algorithm, key, data []byte) ([]byte, error) {
	if alg != HMACSHA256 {
		return nil, unsupported("hmac", alg, KindMAC)
	}
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil), nil
}

func verifyMAC(alg Algorithm, key, data, tag []byte) error {
	want, err := mac(alg, key, data)
	if err != nil {
		return err
	}
	// hmac.Equal is constant-time, so a forger learns nothing from timing.
	if !hmac.Equal(want, tag) {
		return opError("verify hmac", alg, ErrAuthentication)
	}
	return nil
}

// maxHKDFOutput is RFC 5869's limit, 255 blocks of the hash output.
const maxHKDFOutput = 255 * sha256.Size

func kdf(alg Algorithm, secret, salt, info []byte, length int) ([]byte, error) {
	const op = "hkdf"
	if alg != HKDFSHA256 {
		return nil, unsupported(op, alg, KindKDF)
	}
	if length < 1 || length > maxHKDFOutput {
		return nil, opError(op, alg, detailError(ErrMalformed, "output length %d outside 1..%d", length, maxHKDFOutput))
	}
	out, err := hkdf.Key(sha256.New, secret, salt, string(info), length)
	if err != nil {
		return nil, opError(op, alg, err)
	}
	return out, nil
}

// deriveSymmetricKey is the KEM-to-AEAD step: HKDF-SHA256 straight into a
// key for alg, so the derived bytes never pass through the caller.
func deriveSymmetricKey(alg Algorithm, secret, salt, info []byte) (*SymmetricKey, error) {
	const op = "derive symmetric key"
	s, err := aeadFor(op, alg)
	if err != nil {
		return nil, err
	}
	key, err := kdf(DefaultKDF, secret, salt, info, s.keySize)
	if err != nil {
		return nil, err
	}
	return newSymmetricKey(op, alg, s, key)
}
