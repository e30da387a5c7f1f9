package crypto

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps at least one of
// them, so callers (and the gRPC adapter mapping them to status codes)
// decide with errors.Is and never by parsing messages.
var (
	// ErrUnsupportedAlgorithm: the algorithm is unknown, or it is of the
	// wrong kind for the operation (a KEM key passed to Sign, say).
	ErrUnsupportedAlgorithm = errors.New("unsupported algorithm")

	// ErrAlgorithmMismatch: an encoded signature or ciphertext names a
	// different algorithm than the key it is used with. It is always
	// returned together with the operation's own sentinel.
	ErrAlgorithmMismatch = errors.New("algorithm mismatch")

	// ErrInvalidKey: key material is the wrong size, fails validation
	// (e.g. the ML-KEM modulus check, a low-order X25519 point), is nil,
	// or has been destroyed.
	ErrInvalidKey = errors.New("invalid key")

	// ErrMalformed: an input has the wrong length, version, type or range
	// (truncated or oversize encodings, a bad nonce size, a context string
	// over 255 bytes, an HKDF output length out of range).
	ErrMalformed = errors.New("malformed input")

	// ErrInvalidSignature: Verify rejected the signature. Every error Verify
	// returns matches it, whatever the cause, so "err != nil" is the only
	// check a caller needs; the cause is wrapped alongside for logs.
	ErrInvalidSignature = errors.New("invalid signature")

	// ErrAuthentication: an AEAD ciphertext or a MAC did not authenticate —
	// wrong key, tampered data or associated data.
	ErrAuthentication = errors.New("authentication failed")
)

// opError builds the package's error shape, "crypto: <op> <alg>: <causes>",
// wrapping every cause so each stays matchable with errors.Is. alg is 0
// when the failure happened before an algorithm was known.
func opError(op string, alg Algorithm, causes ...error) error {
	prefix := "crypto: " + op
	if alg != 0 {
		prefix += " " + alg.String()
	}
	if len(causes) == 2 {
		return fmt.Errorf("%s: %w: %w", prefix, causes[0], causes[1])
	}
	return fmt.Errorf("%s: %w", prefix, errors.Join(causes...))
}

// detailError attaches a human-readable detail to a sentinel without
// hiding it from errors.Is.
func detailError(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w (%s)", sentinel, fmt.Sprintf(format, args...))
}
