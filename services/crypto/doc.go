// Package crypto is Creto's cryptographic provider and the only package that
// calls primitive libraries (circl, blake3, the standard library's crypto
// packages). Everything else asks it for an operation by algorithm name.
//
// It offers, by stable name (see ParseAlgorithm):
//
//   - AEAD: "aes-256-gcm", "chacha20-poly1305"
//   - signatures: "ed25519", "ml-dsa-65", and the composite
//     "ed25519+ml-dsa-65" (draft-ietf-lamps-pq-composite-sigs), which needs
//     both component signatures to verify
//   - KEMs: "x25519" (RFC 9180 DHKEM), "ml-kem-768", and the hybrid
//     "x-wing" (X25519 + ML-KEM-768)
//   - hashes "sha-256", "sha3-256", "blake3"; "hmac-sha256"; "hkdf-sha256"
//
// Keys are typed (PublicKey, PrivateKey, SymmetricKey) and bound to one
// algorithm. Keys, signatures and ciphertexts share one binary encoding: a
// 4-byte header (version, object type, algorithm identifier) followed by
// bytes of a length fixed per algorithm, validated exactly on parse. A parsed
// PublicKey keeps the library's unpacked form, so repeated verifications pay
// only for the verification itself.
//
// Unknown algorithms, algorithms of the wrong kind, malformed encodings and
// failed checks are errors matching the Err sentinels; there is no fallback.
// docs/crypto.md records the encoding, the composite construction, the
// default algorithm per use with the measurements behind it, and what
// zeroization can and cannot promise in Go.
package crypto
