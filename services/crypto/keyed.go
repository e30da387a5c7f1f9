package crypto

import (
	"hash"

	"github.com/zeebo/blake3"
)

// KeyedHashKeySize is the key size of NewKeyedHash.
const KeyedHashKeySize = 32

// NewKeyedHash returns a streaming keyed hash: BLAKE3 in its keyed mode,
// a PRF and MAC at full BLAKE3 speed, with a 32-byte key. Use it where a
// digest must not be computable, or comparable across keys, by someone who
// sees only the data — for example a content hash that should not let a
// reader of metadata confirm that a known file is stored. Other hashes are
// keyed with HMAC instead, and fail here with ErrUnsupportedAlgorithm.
func NewKeyedHash(alg Algorithm, key []byte) (hash.Hash, error) {
	const op = "new keyed hash"
	if alg != BLAKE3 {
		if err := alg.require(op, KindHash); err != nil {
			return nil, err
		}
		return nil, opError(op, alg, detailError(ErrUnsupportedAlgorithm, "only blake3 has a keyed mode; use hmac"))
	}
	if len(key) != KeyedHashKeySize {
		return nil, opError(op, alg, detailError(ErrInvalidKey, "%d-byte key, want %d", len(key), KeyedHashKeySize))
	}
	h, err := blake3.NewKeyed(key)
	if err != nil {
		return nil, opError(op, alg, detailError(ErrInvalidKey, "%v", err))
	}
	return h, nil
}
