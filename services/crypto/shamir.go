package crypto

import (
	"crypto/rand"
	"fmt"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
)

// Key splitting: a t-of-n threshold AEAD key, for unsealing with a quorum
// of operators rather than one key file.
//
// The construction is Shamir's secret sharing over the scalar field of
// ristretto255 (prime order l ≈ 2^252), through circl's secretsharing, and
// an HKDF step:
//
//	s       uniformly random scalar
//	f(x)    = s + a1·x + … + a(t-1)·x^(t-1) mod l, ai uniformly random
//	share i = (i, f(i)) for i = 1..n, f(i) as its canonical 32-byte encoding
//	key     = HKDF-SHA256(ikm = encoding of s, salt, info), as an AEAD key
//
// Any t shares determine f and so s (Lagrange interpolation at 0); any t-1
// shares are consistent with every value of s, so they reveal nothing about
// it. The key itself is not shared because a 256-bit AES key is not a field
// element (l < 2^253); HKDF turns the ~252 uniform bits of s into a uniform
// key, and salt and info bind the key to its use, so the same shares never
// open another deployment's data.
//
// Shares are not authenticated: a wrong or altered share makes CombineKey
// return a different key, not an error (there is nothing to check a share
// against without storing something derived from the secret). Callers
// detect that by authenticating what the key protects, and may store a
// digest per share to name the bad one.

// MaxKeyShares is the largest number of shares a key can be split into:
// share indexes are one byte.
const MaxKeyShares = 255

// KeyShareSize is the length of a share's value.
const KeyShareSize = 32

// KeyShare is one share of a split key. Its value is secret: KeyShare
// never prints it, and Destroy overwrites it.
type KeyShare struct {
	// Index is the share's x coordinate, 1..n. No two shares of one split
	// have the same index.
	Index uint8
	value *shareBox
}

// shareBox puts the value two pointers away from the KeyShare. A KeyShare
// in an unexported struct field cannot have its methods called by fmt,
// and a bad verb (%s, %q) there prints what a pointer points to one level
// deep — here, only the address of the array.
type shareBox struct{ v *[KeyShareSize]byte }

func newShareBox() *shareBox { return &shareBox{v: new([KeyShareSize]byte)} }

// NewKeyShare makes a share from its index and value (copied), for shares
// read back from wherever they were kept. The value must be KeyShareSize
// bytes; whether it is a valid scalar is checked by CombineKey.
func NewKeyShare(index uint8, value []byte) (KeyShare, error) {
	if len(value) != KeyShareSize {
		return KeyShare{}, opError("new key share", 0, detailError(ErrMalformed, "value is %d bytes, want %d", len(value), KeyShareSize))
	}
	b := newShareBox()
	copy(b.v[:], value)
	return KeyShare{Index: index, value: b}, nil
}

// Value returns the share's value, f(Index) as the canonical little-endian
// encoding of a ristretto255 scalar. It is the share's own memory, not a
// copy, valid until Destroy; nil for a destroyed or zero share.
func (s KeyShare) Value() []byte {
	if s.value == nil {
		return nil
	}
	return s.value.v[:]
}

// Destroy overwrites the share's value, for every copy of the share.
func (s *KeyShare) Destroy() {
	if s.value != nil {
		clear(s.value.v[:])
	}
}

// String identifies the share by index only.
func (s KeyShare) String() string { return fmt.Sprintf("crypto.KeyShare(%d)", s.Index) }

// GoString keeps %#v from printing the value.
func (s KeyShare) GoString() string { return s.String() }

// Format applies to every verb (%x and %q included), so no formatting
// directive prints the value.
func (s KeyShare) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// SplitKey generates a new AEAD key for alg and splits it into n shares,
// any threshold of which CombineKey turns back into the same key (given the
// same salt and info). 1 <= threshold <= n <= MaxKeyShares. The key is
// returned for immediate use; the shares are what must be kept.
func SplitKey(alg Algorithm, threshold, n int, salt, info []byte) (*SymmetricKey, []KeyShare, error) {
	const op = "split key"
	s, err := aeadFor(op, alg)
	if err != nil {
		return nil, nil, err
	}
	if threshold < 1 || threshold > n || n > MaxKeyShares {
		return nil, nil, opError(op, alg, detailError(ErrMalformed, "need 1 <= threshold (%d) <= shares (%d) <= %d", threshold, n, MaxKeyShares))
	}
	g := group.Ristretto255
	secret := g.RandomScalar(rand.Reader)
	defer secret.SetUint64(0)
	shares := make([]KeyShare, n)
	ss := secretsharing.New(rand.Reader, uint(threshold-1), secret)
	id := g.NewScalar()
	for i := range shares {
		sh := ss.ShareWithID(id.SetUint64(uint64(i + 1)))
		shares[i].value = newShareBox()
		if err := putScalar(shares[i].value.v[:], sh.Value); err != nil {
			destroyShares(shares)
			return nil, nil, opError(op, alg, err)
		}
		sh.Value.SetUint64(0)
		shares[i].Index = uint8(i + 1)
	}
	key, err := keyFromScalar(op, alg, s, secret, salt, info)
	if err != nil {
		destroyShares(shares)
		return nil, nil, err
	}
	return key, shares, nil
}

// CombineKey recovers the key SplitKey returned from exactly threshold
// shares with distinct non-zero indexes and canonical values; anything else
// is an error matching ErrMalformed. Exactly, not at least: a share beyond
// the threshold would not take part in the interpolation, so accepting it
// would accept it unchecked. Shares that are well formed but wrong (from
// another split, or altered) yield a different key, not an error.
func CombineKey(alg Algorithm, threshold int, shares []KeyShare, salt, info []byte) (*SymmetricKey, error) {
	const op = "combine key"
	s, err := aeadFor(op, alg)
	if err != nil {
		return nil, err
	}
	if threshold < 1 || threshold > MaxKeyShares {
		return nil, opError(op, alg, detailError(ErrMalformed, "threshold %d outside 1..%d", threshold, MaxKeyShares))
	}
	if len(shares) != threshold {
		return nil, opError(op, alg, detailError(ErrMalformed, "%d shares, the threshold is %d", len(shares), threshold))
	}
	g := group.Ristretto255
	var seen [MaxKeyShares + 1]bool
	parsed := make([]secretsharing.Share, len(shares))
	defer func() {
		for _, p := range parsed {
			if p.Value != nil {
				p.Value.SetUint64(0)
			}
		}
	}()
	for i, sh := range shares {
		switch {
		case sh.Index == 0:
			return nil, opError(op, alg, detailError(ErrMalformed, "share %d has index 0", i))
		case seen[sh.Index]:
			// circl panics on duplicate indexes; they are rejected first.
			return nil, opError(op, alg, detailError(ErrMalformed, "share %d repeats index %d", i, sh.Index))
		}
		seen[sh.Index] = true
		v := g.NewScalar()
		if sh.value == nil || v.UnmarshalBinary(sh.value.v[:]) != nil {
			return nil, opError(op, alg, detailError(ErrMalformed, "share %d (index %d) is not a canonical scalar", i, sh.Index))
		}
		parsed[i] = secretsharing.Share{ID: g.NewScalar().SetUint64(uint64(sh.Index)), Value: v}
	}
	secret, err := secretsharing.Recover(uint(threshold-1), parsed)
	if err != nil {
		return nil, opError(op, alg, detailError(ErrMalformed, "%v", err))
	}
	defer secret.SetUint64(0)
	return keyFromScalar(op, alg, s, secret, salt, info)
}

// keyFromScalar is the HKDF step shared by split and combine.
func keyFromScalar(op string, alg Algorithm, s *aeadScheme, secret group.Scalar, salt, info []byte) (*SymmetricKey, error) {
	var ikm [KeyShareSize]byte
	defer clear(ikm[:])
	if err := putScalar(ikm[:], secret); err != nil {
		return nil, opError(op, alg, err)
	}
	key, err := kdf(DefaultKDF, ikm[:], salt, info, s.keySize)
	if err != nil {
		return nil, err
	}
	return newSymmetricKey(op, alg, s, key)
}

// putScalar writes the canonical encoding of v into dst and wipes the
// temporary copy circl returns.
func putScalar(dst []byte, v group.Scalar) error {
	b, err := v.MarshalBinary()
	defer clear(b)
	if err != nil || len(b) != len(dst) {
		return detailError(ErrMalformed, "scalar encoding")
	}
	copy(dst, b)
	return nil
}

func destroyShares(shares []KeyShare) {
	for i := range shares {
		shares[i].Destroy()
	}
}
