package crypto

import (
	"fmt"
	"slices"
)

// Algorithm identifies one cryptographic algorithm. Its numeric value is the
// identifier written into every key, signature and ciphertext encoding, so a
// value, once released, never changes meaning; a revised construction gets a
// new value and a new name. The zero value is not an algorithm, so a config
// field that was never set fails instead of silently picking something.
type Algorithm uint16

// Supported algorithms. The high byte is the Kind, which lets a caller (and
// this package) reject a signing algorithm where a KEM is expected without a
// table lookup.
const (
	AES256GCM        Algorithm = 0x0101 // "aes-256-gcm"
	ChaCha20Poly1305 Algorithm = 0x0102 // "chacha20-poly1305"

	Ed25519        Algorithm = 0x0201 // "ed25519" (RFC 8032; Ed25519ctx when a context is given)
	MLDSA65        Algorithm = 0x0202 // "ml-dsa-65" (FIPS 204, hedged signing)
	Ed25519MLDSA65 Algorithm = 0x0203 // "ed25519+ml-dsa-65" (composite, draft-ietf-lamps-pq-composite-sigs)

	X25519   Algorithm = 0x0301 // "x25519" (DHKEM(X25519, HKDF-SHA256), RFC 9180)
	MLKEM768 Algorithm = 0x0302 // "ml-kem-768" (FIPS 203)
	XWing    Algorithm = 0x0303 // "x-wing" (X25519 + ML-KEM-768, draft-connolly-cfrg-xwing-kem)

	SHA256   Algorithm = 0x0401 // "sha-256"
	SHA3_256 Algorithm = 0x0402 // "sha3-256"
	BLAKE3   Algorithm = 0x0403 // "blake3" (256-bit output)

	HMACSHA256 Algorithm = 0x0501 // "hmac-sha256"

	HKDFSHA256 Algorithm = 0x0601 // "hkdf-sha256"
)

// Defaults per use. They are what a caller should pick when its config does
// not name an algorithm; docs/crypto.md records the measurements behind them.
const (
	// DefaultAEAD is AES-256-GCM: hardware AES makes it the fastest AEAD on
	// every server CPU we target.
	DefaultAEAD = AES256GCM
	// DefaultSignature is the composite, so a signature stays unforgeable as
	// long as either Ed25519 or ML-DSA-65 does.
	DefaultSignature = Ed25519MLDSA65
	// DefaultKEM is X-Wing, the hybrid KEM with the same either-holds property.
	DefaultKEM = XWing
	// DefaultContentHash is BLAKE3, the fastest of the three hashes on bulk data.
	DefaultContentHash = BLAKE3
	// DefaultInteropHash is SHA-256, which RFC 6962 / C2SP transparency logs,
	// HMAC and HKDF require and which external tools can check.
	DefaultInteropHash = SHA256
	// DefaultMAC is HMAC-SHA256.
	DefaultMAC = HMACSHA256
	// DefaultKDF is HKDF-SHA256.
	DefaultKDF = HKDFSHA256
)

// Kind is the family an Algorithm belongs to; each Provider operation
// accepts exactly one Kind.
type Kind uint8

// Algorithm kinds.
const (
	KindAEAD      Kind = 0x01
	KindSignature Kind = 0x02
	KindKEM       Kind = 0x03
	KindHash      Kind = 0x04
	KindMAC       Kind = 0x05
	KindKDF       Kind = 0x06
)

var kindNames = map[Kind]string{
	KindAEAD:      "aead",
	KindSignature: "signature",
	KindKEM:       "kem",
	KindHash:      "hash",
	KindMAC:       "mac",
	KindKDF:       "kdf",
}

// String returns the lower-case name of the kind.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%#02x)", uint8(k))
}

// algorithmNames holds the stable names. They are part of the config and API
// surface: never rename one, add a new algorithm instead.
var algorithmNames = map[Algorithm]string{
	AES256GCM:        "aes-256-gcm",
	ChaCha20Poly1305: "chacha20-poly1305",
	Ed25519:          "ed25519",
	MLDSA65:          "ml-dsa-65",
	Ed25519MLDSA65:   "ed25519+ml-dsa-65",
	X25519:           "x25519",
	MLKEM768:         "ml-kem-768",
	XWing:            "x-wing",
	SHA256:           "sha-256",
	SHA3_256:         "sha3-256",
	BLAKE3:           "blake3",
	HMACSHA256:       "hmac-sha256",
	HKDFSHA256:       "hkdf-sha256",
}

// algorithmAliases are extra spellings ParseAlgorithm accepts; String always
// returns the canonical name.
var algorithmAliases = map[string]Algorithm{
	"x25519+ml-kem-768": XWing,
}

var algorithmByName = func() map[string]Algorithm {
	m := make(map[string]Algorithm, len(algorithmNames)+len(algorithmAliases))
	for a, n := range algorithmNames {
		m[n] = a
	}
	for n, a := range algorithmAliases {
		m[n] = a
	}
	return m
}()

// ParseAlgorithm returns the algorithm with the given stable name, for
// example "ml-dsa-65". Names are matched exactly (lower case); an unknown
// name is an error matching ErrUnsupportedAlgorithm, never a fallback.
func ParseAlgorithm(name string) (Algorithm, error) {
	if a, ok := algorithmByName[name]; ok {
		return a, nil
	}
	return 0, fmt.Errorf("crypto: parse algorithm %q: %w", name, ErrUnsupportedAlgorithm)
}

// Algorithms lists every supported algorithm, for help texts and
// capability listings.
func Algorithms() []Algorithm {
	out := make([]Algorithm, 0, len(algorithmNames))
	for a := range algorithmNames {
		out = append(out, a)
	}
	// Sorting by identifier keeps the listing stable across runs.
	slices.Sort(out)
	return out
}

// String returns the stable name, or a hex placeholder for a value that is
// not a supported algorithm (so logging a bad value never panics).
func (a Algorithm) String() string {
	if n, ok := algorithmNames[a]; ok {
		return n
	}
	return fmt.Sprintf("algorithm(%#04x)", uint16(a))
}

// Kind returns the family of the algorithm.
func (a Algorithm) Kind() Kind { return Kind(a >> 8) }

// Supported reports whether a is one of the algorithms this package implements.
func (a Algorithm) Supported() bool {
	_, ok := algorithmNames[a]
	return ok
}

// MarshalText encodes the algorithm by name, so config files and JSON carry
// readable, stable strings rather than numbers.
func (a Algorithm) MarshalText() ([]byte, error) {
	if !a.Supported() {
		return nil, fmt.Errorf("crypto: marshal %v: %w", a, ErrUnsupportedAlgorithm)
	}
	return []byte(algorithmNames[a]), nil
}

// UnmarshalText is the inverse of MarshalText; it accepts what
// ParseAlgorithm accepts.
func (a *Algorithm) UnmarshalText(text []byte) error {
	v, err := ParseAlgorithm(string(text))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// require checks that a is supported and of kind k, the check every
// operation makes before touching any input.
func (a Algorithm) require(op string, k Kind) error {
	if !a.Supported() {
		return fmt.Errorf("crypto: %s %v: %w", op, a, ErrUnsupportedAlgorithm)
	}
	if a.Kind() != k {
		return fmt.Errorf("crypto: %s: %v is a %v algorithm, not %v: %w", op, a, a.Kind(), k, ErrUnsupportedAlgorithm)
	}
	return nil
}

// unsupported explains why an operation's switch matched no case. It is
// never nil, even for a supported algorithm of the right kind that the
// operation has not been taught, so a new algorithm can never fall through
// to another one's code.
func unsupported(op string, a Algorithm, k Kind) error {
	if err := a.require(op, k); err != nil {
		return err
	}
	return opError(op, a, ErrUnsupportedAlgorithm)
}
