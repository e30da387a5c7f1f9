package crypto

import (
	"bytes"
	"errors"
	"testing"
)

// The decoders of untrusted bytes. `go test` runs each seed corpus; run
// `go test -fuzz FuzzX -fuzztime 1m ./services/crypto/` to explore further.
// Every target checks the same contract: no panic, failures match a
// sentinel, and whatever parses re-encodes to exactly the input (one
// encoding per value, so encodings can be compared and hashed).

var sentinels = []error{ErrUnsupportedAlgorithm, ErrAlgorithmMismatch, ErrInvalidKey, ErrMalformed, ErrInvalidSignature, ErrAuthentication}

func requireSentinel(t *testing.T, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error matches no sentinel: %v", err)
}

// fixedKey derives a deterministic key so seed corpora are stable.
func fixedKey(t testing.TB, alg Algorithm) *PrivateKey {
	s, err := asymmetricFor("fuzz", alg)
	mustNoErr(t, err)
	k, err := NewPrivateKey(alg, bytes.Repeat([]byte{byte(alg)}, s.seedSize))
	mustNoErr(t, err)
	return k
}

// addTruncations seeds f with enc and its edge-case neighbours.
func addTruncations(f *testing.F, enc []byte) {
	f.Add(enc)
	f.Add(enc[:len(enc)-1])
	f.Add(append(bytes.Clone(enc), 0))
	f.Add(enc[:headerSize])
}

func FuzzParsePublicKey(f *testing.F) {
	for _, alg := range asymmetric {
		addTruncations(f, fixedKey(f, alg).Public().Bytes())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePublicKey(b)
		if err != nil {
			requireSentinel(t, err)
			return
		}
		if !bytes.Equal(k.Bytes(), b) {
			t.Fatal("parsed key re-encodes differently")
		}
		if k.Algorithm().Kind() == KindSignature {
			if New().Verify(k, nil, nil, nil) == nil {
				t.Fatal("empty signature accepted")
			}
			return
		}
		if _, _, err := New().Encapsulate(k); err != nil {
			requireSentinel(t, err)
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	for _, alg := range asymmetric {
		enc, err := MarshalPrivateKey(fixedKey(f, alg))
		mustNoErr(f, err)
		addTruncations(f, enc)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePrivateKey(b)
		if err != nil {
			requireSentinel(t, err)
			return
		}
		enc, err := MarshalPrivateKey(k)
		mustNoErr(t, err)
		if !bytes.Equal(enc, b) {
			t.Fatal("parsed key re-encodes differently")
		}
		k.Destroy()
	})
}

func FuzzParseSymmetricKey(f *testing.F) {
	for _, alg := range aeadAlgorithms {
		k, err := NewSymmetricKey(alg, bytes.Repeat([]byte{1}, 32))
		mustNoErr(f, err)
		enc, err := MarshalSymmetricKey(k)
		mustNoErr(f, err)
		addTruncations(f, enc)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseSymmetricKey(b)
		if err != nil {
			requireSentinel(t, err)
			return
		}
		enc, err := MarshalSymmetricKey(k)
		mustNoErr(t, err)
		if !bytes.Equal(enc, b) {
			t.Fatal("parsed key re-encodes differently")
		}
	})
}

// FuzzVerify feeds arbitrary signatures, messages and contexts to all three
// signature schemes. Only the seed message under the seed context may ever
// verify. (ML-DSA signing is hedged, so each fuzz worker's seed signatures
// differ; the check is on what was signed, not on the signature bytes.)
func FuzzVerify(f *testing.F) {
	p := New()
	msg, context := []byte("fuzz message"), []byte("fuzz")
	var keys []*PublicKey
	for _, alg := range signatureAlgorithms {
		k := fixedKey(f, alg)
		keys = append(keys, k.Public())
		sig, err := p.Sign(k, msg, context)
		mustNoErr(f, err)
		f.Add(sig, msg, context)
		f.Add(sig[:len(sig)-1], msg, context)
		f.Add(append(bytes.Clone(sig), 0), msg, context)
	}
	f.Fuzz(func(t *testing.T, sig, m, c []byte) {
		if alg, raw, err := DecodeSignature(sig); err != nil {
			requireSentinel(t, err)
		} else if enc, err := EncodeSignature(alg, raw); err != nil || !bytes.Equal(enc, sig) {
			t.Fatal("decoded signature re-encodes differently")
		}
		for _, k := range keys {
			err := p.Verify(k, m, c, sig)
			if err == nil {
				if !bytes.Equal(m, msg) || !bytes.Equal(c, context) {
					t.Fatalf("%v accepted a forged signature", k.Algorithm())
				}
				continue
			}
			if !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("verify failure does not match ErrInvalidSignature: %v", err)
			}
		}
	})
}

// FuzzDecrypt: only a ciphertext the key's holder made may open, and only
// with its own associated data. (Nonces are random, so each fuzz worker's
// seed ciphertexts differ; the check is on what opens.)
func FuzzDecrypt(f *testing.F) {
	p := New()
	aad := []byte("aad")
	var keys []*SymmetricKey
	for _, alg := range aeadAlgorithms {
		k, err := NewSymmetricKey(alg, bytes.Repeat([]byte{2}, 32))
		mustNoErr(f, err)
		keys = append(keys, k)
		ct, err := p.Encrypt(k, []byte("plaintext"), aad)
		mustNoErr(f, err)
		f.Add(ct, aad)
		f.Add(ct[:headerSize+12+15], aad)
		f.Add(ct, []byte{})
	}
	f.Fuzz(func(t *testing.T, ct, a []byte) {
		for _, k := range keys {
			pt, err := p.Decrypt(k, ct, a)
			if err != nil {
				requireSentinel(t, err)
				continue
			}
			if !bytes.Equal(a, aad) || string(pt) != "plaintext" {
				t.Fatal("forged ciphertext opened")
			}
		}
	})
}

// FuzzDecapsulate: arbitrary ciphertexts never panic, and every failure is
// a sentinel (implicit rejection means most well-sized inputs succeed).
func FuzzDecapsulate(f *testing.F) {
	p := New()
	var keys []*PrivateKey
	for _, alg := range kemAlgorithms {
		k := fixedKey(f, alg)
		keys = append(keys, k)
		_, ct, err := p.Encapsulate(k.Public())
		mustNoErr(f, err)
		addTruncations(f, ct)
	}
	f.Fuzz(func(t *testing.T, ct []byte) {
		for _, k := range keys {
			ss, err := p.Decapsulate(k, ct)
			if err != nil {
				requireSentinel(t, err)
				continue
			}
			if len(ss) != sharedSecretSize {
				t.Fatalf("%d-byte shared secret", len(ss))
			}
		}
	})
}

func FuzzParseAlgorithm(f *testing.F) {
	for _, a := range Algorithms() {
		f.Add(a.String())
	}
	f.Add("x25519+ml-kem-768")
	f.Add("")
	f.Fuzz(func(t *testing.T, name string) {
		a, err := ParseAlgorithm(name)
		if err != nil {
			requireSentinel(t, err)
			return
		}
		if again, err := ParseAlgorithm(a.String()); err != nil || again != a || !a.Supported() {
			t.Fatalf("%q parsed to %v, which does not round-trip", name, a)
		}
	})
}
