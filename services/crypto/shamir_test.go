package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
)

// ristretto255's scalar field order, written out independently of circl.
var scalarOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

func leToInt(b []byte) *big.Int {
	be := slices.Clone(b)
	slices.Reverse(be)
	return new(big.Int).SetBytes(be)
}

// interpolateAtZero is Lagrange interpolation at x = 0 over the scalar
// field with math/big: an implementation independent of circl's.
func interpolateAtZero(shares []KeyShare) *big.Int {
	sum := new(big.Int)
	for i, si := range shares {
		num, den := big.NewInt(1), big.NewInt(1)
		xi := big.NewInt(int64(si.Index))
		for j, sj := range shares {
			if i == j {
				continue
			}
			xj := big.NewInt(int64(sj.Index))
			num.Mul(num, xj)
			den.Mul(den, new(big.Int).Sub(xj, xi))
		}
		den.Mod(den, scalarOrder)
		term := new(big.Int).Mul(leToInt(si.Value()), num)
		term.Mul(term, new(big.Int).ModInverse(den, scalarOrder))
		sum.Add(sum, term)
	}
	return sum.Mod(sum, scalarOrder)
}

func scalarLE(v *big.Int) []byte {
	b := v.FillBytes(make([]byte, 32))
	slices.Reverse(b)
	return b
}

func keyBytes(t *testing.T, k *SymmetricKey) []byte {
	t.Helper()
	enc, err := MarshalSymmetricKey(k)
	mustNoErr(t, err)
	return enc[headerSize:]
}

// subsets returns every k-element subset of shares.
func subsets(shares []KeyShare, k int) [][]KeyShare {
	if k == 0 {
		return [][]KeyShare{nil}
	}
	var out [][]KeyShare
	for i := 0; i+k <= len(shares); i++ {
		for _, rest := range subsets(shares[i+1:], k-1) {
			out = append(out, append([]KeyShare{shares[i]}, rest...))
		}
	}
	return out
}

func TestSplitCombineEverySubset(t *testing.T) {
	salt, info := []byte("salt"), []byte("creto-test/v1")
	for _, tc := range []struct{ threshold, n int }{{1, 1}, {1, 3}, {2, 2}, {2, 3}, {3, 5}, {5, 5}, {3, 7}} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.threshold, tc.n), func(t *testing.T) {
			key, shares, err := SplitKey(AES256GCM, tc.threshold, tc.n, salt, info)
			mustNoErr(t, err)
			want := keyBytes(t, key)
			if len(shares) != tc.n {
				t.Fatalf("%d shares", len(shares))
			}
			for i, s := range shares {
				if int(s.Index) != i+1 {
					t.Fatalf("share %d has index %d", i, s.Index)
				}
			}
			// The key is HKDF of the polynomial's constant term, computed
			// here with math/big and the standard library's HKDF.
			s := interpolateAtZero(shares[:tc.threshold])
			indep, err := hkdf.Key(sha256.New, scalarLE(s), salt, string(info), 32)
			mustNoErr(t, err)
			if !bytes.Equal(indep, want) {
				t.Fatal("key is not HKDF of the shared scalar")
			}
			for _, sub := range subsets(shares, tc.threshold) {
				// Order does not matter either.
				slices.Reverse(sub)
				got, err := CombineKey(AES256GCM, tc.threshold, sub, salt, info)
				mustNoErr(t, err)
				if !bytes.Equal(keyBytes(t, got), want) {
					t.Fatalf("subset %v recovers another key", sub)
				}
			}
		})
	}
}

// TestCombineKnownAnswer combines shares of a fixed polynomial computed by
// an independent implementation (Python, big integers and hmac), and
// expects the key it computed.
func TestCombineKnownAnswer(t *testing.T) {
	values := map[uint8]string{
		1: "94c637ac62c9eb47c3d7f642b3a78192d6647170ab2523052cfb85547b9d8a0c",
		2: "d6b5305ddac17e6402260ccb6729ed90b634867f88c56b3ab2e704b7e26f490f",
		3: "0c1bf1548c36468bc875027a462d79aaa2bcf3e29bb8076792afaf653174ff00",
		4: "109e644daded666cc200c9950ca7e3089bfcb99ae5fef68acc52866067aaac01",
		5: "f56a95e92284ceaf192a687bdb9c4d979ff4d8a6659839a660d188a784125101",
	}
	const wantKey = "c27a16e0eb95cd9e9c94d0d427d281b59773d73d91a295fd0023f7643bdce068"
	var all []KeyShare
	for i := uint8(1); i <= 5; i++ {
		s, err := NewKeyShare(i, unhex(t, values[i]))
		mustNoErr(t, err)
		all = append(all, s)
	}
	for _, sub := range subsets(all, 3) {
		k, err := CombineKey(AES256GCM, 3, sub, []byte("kat-salt"), []byte("creto-test/v1"))
		mustNoErr(t, err)
		if got := hex.EncodeToString(keyBytes(t, k)); got != wantKey {
			t.Fatalf("key %s, want %s", got, wantKey)
		}
	}
	// Other salt or info: another key.
	k, err := CombineKey(AES256GCM, 3, all[:3], []byte("kat-salt"), []byte("creto-test/v2"))
	mustNoErr(t, err)
	if hex.EncodeToString(keyBytes(t, k)) == wantKey {
		t.Fatal("info does not separate keys")
	}
}

func TestCombineRejects(t *testing.T) {
	_, shares, err := SplitKey(AES256GCM, 3, 5, nil, nil)
	mustNoErr(t, err)
	nonCanonical, err := NewKeyShare(shares[1].Index, bytes.Repeat([]byte{0xff}, KeyShareSize))
	mustNoErr(t, err)
	zero := shares[1]
	zero.Index = 0
	cases := map[string][]KeyShare{
		"too few":       shares[:2],
		"too many":      shares[:4],
		"duplicate":     {shares[0], shares[1], shares[0]},
		"same index":    {shares[0], shares[1], {Index: shares[0].Index, value: shares[2].value}},
		"no value":      {shares[0], shares[1], {Index: 3}},
		"zero index":    {shares[0], zero, shares[2]},
		"non-canonical": {shares[0], nonCanonical, shares[2]},
		"none":          nil,
	}
	for name, in := range cases {
		if _, err := CombineKey(AES256GCM, 3, in, nil, nil); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			wantErr(t, err, ErrMalformed)
		}
	}
	for _, th := range []int{0, -1, 256} {
		_, err := CombineKey(AES256GCM, th, shares[:3], nil, nil)
		wantErr(t, err, ErrMalformed)
	}
	_, err = CombineKey(Ed25519, 3, shares[:3], nil, nil)
	wantErr(t, err, ErrUnsupportedAlgorithm)
}

func TestSplitRejects(t *testing.T) {
	for _, tc := range []struct{ threshold, n int }{{0, 3}, {4, 3}, {-1, 3}, {2, 256}, {0, 0}} {
		_, _, err := SplitKey(AES256GCM, tc.threshold, tc.n, nil, nil)
		wantErr(t, err, ErrMalformed)
	}
	_, _, err := SplitKey(SHA256, 2, 3, nil, nil)
	wantErr(t, err, ErrUnsupportedAlgorithm)
	// The largest split works.
	key, shares, err := SplitKey(ChaCha20Poly1305, 2, MaxKeyShares, nil, nil)
	mustNoErr(t, err)
	got, err := CombineKey(ChaCha20Poly1305, 2, []KeyShare{shares[254], shares[0]}, nil, nil)
	mustNoErr(t, err)
	if !bytes.Equal(keyBytes(t, got), keyBytes(t, key)) {
		t.Fatal("share 255 does not combine")
	}
}

// A well-formed wrong share is not detectable here: it yields another key,
// which then fails to open what the real key sealed.
func TestCombineWrongShareGivesAnotherKey(t *testing.T) {
	p := New()
	key, shares, err := SplitKey(AES256GCM, 2, 3, nil, []byte("v1"))
	mustNoErr(t, err)
	ct, err := p.Encrypt(key, []byte("root key"), nil)
	mustNoErr(t, err)
	_, other, err := SplitKey(AES256GCM, 2, 3, nil, []byte("v1"))
	mustNoErr(t, err)
	alteredValue := bytes.Clone(shares[1].Value())
	alteredValue[0] ^= 1
	altered, err := NewKeyShare(shares[1].Index, alteredValue)
	mustNoErr(t, err)
	for name, in := range map[string][]KeyShare{
		"share of another split": {shares[0], other[1]},
		"altered share":          {shares[0], altered},
	} {
		k, err := CombineKey(AES256GCM, 2, in, nil, []byte("v1"))
		if err != nil {
			// A flipped bit can make the value non-canonical; that is
			// rejected outright, which is just as good.
			wantErr(t, err, ErrMalformed)
			continue
		}
		if _, err := p.Decrypt(k, ct, nil); err == nil {
			t.Fatalf("%s: recovered the real key", name)
		}
	}
}

func TestKeyShareNeverPrintsValue(t *testing.T) {
	_, shares, err := SplitKey(AES256GCM, 1, 1, nil, nil)
	mustNoErr(t, err)
	s := shares[0]
	v := hex.EncodeToString(s.Value())
	type hidden struct{ s KeyShare } // fmt cannot call methods of unexported fields
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for _, arg := range []any{s, &s, []KeyShare{s}, struct{ S KeyShare }{s}, hidden{s}, &hidden{s}} {
			out := fmt.Sprintf(verb, arg)
			if strings.Contains(strings.ToLower(out), v[:8]) || strings.Contains(out, fmt.Sprint(s.Value()[0], " ", s.Value()[1])) {
				t.Fatalf("%s of %T prints the value: %s", verb, arg, out)
			}
		}
	}
	cp := s
	s.Destroy()
	if !bytes.Equal(cp.Value(), make([]byte, KeyShareSize)) {
		t.Fatal("Destroy left the value")
	}
	_, err = NewKeyShare(1, make([]byte, 31))
	wantErr(t, err, ErrMalformed)
}

// FuzzCombineKey: shares typed in by operators are untrusted. Whatever the
// bytes, CombineKey returns a key or an error matching ErrMalformed, never
// a panic (circl panics on duplicate indexes, for one).
func FuzzCombineKey(f *testing.F) {
	_, shares, err := SplitKey(AES256GCM, 2, 3, nil, nil)
	mustNoErr(f, err)
	var enc []byte
	for _, s := range shares[:2] {
		enc = append(append(enc, s.Index), s.Value()...)
	}
	f.Add(uint8(2), enc)
	f.Add(uint8(2), append(enc[:33:33], enc[:33]...))
	f.Add(uint8(1), make([]byte, 33))
	f.Fuzz(func(t *testing.T, threshold uint8, b []byte) {
		var in []KeyShare
		for ; len(b) >= 1+KeyShareSize; b = b[1+KeyShareSize:] {
			s, err := NewKeyShare(b[0], b[1:1+KeyShareSize])
			mustNoErr(t, err)
			in = append(in, s)
		}
		if _, err := CombineKey(AES256GCM, int(threshold), in, nil, nil); err != nil {
			wantErr(t, err, ErrMalformed)
		}
	})
}
