package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/kem/xwing"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

func TestSignVerify(t *testing.T) {
	p := New()
	msg := []byte("grant agent-7 read on bucket/reports")
	for _, alg := range signatureAlgorithms {
		priv, err := p.GenerateKey(alg)
		mustNoErr(t, err)
		other, err := p.GenerateKey(alg)
		mustNoErr(t, err)
		pub := priv.Public()
		for _, context := range [][]byte{nil, []byte("creto-nhi-delegation/v1")} {
			name := alg.String() + "/context=" + string(context)
			t.Run(name, func(t *testing.T) {
				sig, err := p.Sign(priv, msg, context)
				mustNoErr(t, err)
				if len(sig) != headerSize+encodedSizes[alg].output {
					t.Fatalf("signature is %d bytes", len(sig))
				}
				mustNoErr(t, p.Verify(pub, msg, context, sig))

				reject := func(why string, err error, also ...error) {
					t.Helper()
					if err == nil {
						t.Fatalf("%s: accepted", why)
					}
					wantErr(t, err, append([]error{ErrInvalidSignature}, also...)...)
				}
				reject("tampered message", p.Verify(pub, flip(msg, 3), context, sig))
				reject("other context", p.Verify(pub, msg, []byte("creto-audit/v1"), sig))
				reject("empty vs nil context", p.Verify(pub, msg, append(context, 'x'), sig))
				reject("wrong key", p.Verify(other.Public(), msg, context, sig))
				for _, i := range []int{headerSize, headerSize + 1, len(sig) / 2, len(sig) - 1} {
					reject("tampered signature", p.Verify(pub, msg, context, flip(sig, i)))
				}
				reject("truncated", p.Verify(pub, msg, context, sig[:len(sig)-1]), ErrMalformed)
				reject("oversize", p.Verify(pub, msg, context, append(bytes.Clone(sig), 0)), ErrMalformed)
				reject("empty", p.Verify(pub, msg, context, nil), ErrMalformed)
				reject("bad version", p.Verify(pub, msg, context, flip(sig, 0)), ErrMalformed)
				reject("bad type", p.Verify(pub, msg, context, flip(sig, 1)), ErrMalformed)
				reject("huge context", p.Verify(pub, msg, make([]byte, 256), sig), ErrMalformed)
			})
		}
		_, err = p.Sign(priv, msg, make([]byte, 256))
		wantErr(t, err, ErrMalformed)
		_, err = p.Sign(priv, msg, make([]byte, 255))
		mustNoErr(t, err)
	}
}

// A signature is only accepted under the algorithm it was made with, even
// when the bytes happen to have the right length for the key's algorithm.
func TestSignatureAlgorithmMismatch(t *testing.T) {
	p := New()
	edKey, err := p.GenerateKey(Ed25519)
	mustNoErr(t, err)
	mlKey, err := p.GenerateKey(MLDSA65)
	mustNoErr(t, err)
	msg := []byte("m")
	edSig, err := p.Sign(edKey, msg, nil)
	mustNoErr(t, err)
	wantErr(t, p.Verify(mlKey.Public(), msg, nil, edSig), ErrInvalidSignature, ErrAlgorithmMismatch)

	// Relabel the Ed25519 signature as an X25519 "signature": refused as a
	// mismatch, never interpreted.
	relabelled := encode(objSignature, X25519, edSig[headerSize:])
	wantErr(t, p.Verify(edKey.Public(), msg, nil, relabelled), ErrInvalidSignature, ErrAlgorithmMismatch)
}

// The composite is valid only when both halves are: a valid ML-DSA-65 half
// with a bad Ed25519 half, or the reverse, or halves from two signatures,
// must all fail.
func TestCompositeRequiresBothHalves(t *testing.T) {
	p := New()
	priv, err := p.GenerateKey(Ed25519MLDSA65)
	mustNoErr(t, err)
	pub := priv.Public()
	msg1, msg2 := []byte("message one"), []byte("message two")
	sig1, err := p.Sign(priv, msg1, nil)
	mustNoErr(t, err)
	sig2, err := p.Sign(priv, msg2, nil)
	mustNoErr(t, err)
	split := headerSize + mldsa65.SignatureSize

	splice := func(ml, ed []byte) []byte {
		return append(append([]byte{}, ml[:split]...), ed[split:]...)
	}
	zero := func(b []byte, from, to int) []byte {
		c := bytes.Clone(b)
		clear(c[from:to])
		return c
	}
	mustNoErr(t, p.Verify(pub, msg1, nil, splice(sig1, sig1)))
	cases := map[string][]byte{
		"valid ml-dsa, ed25519 from another message": splice(sig1, sig2),
		"valid ed25519, ml-dsa from another message": splice(sig2, sig1),
		"valid ml-dsa, zero ed25519":                 zero(sig1, split, len(sig1)),
		"valid ed25519, zero ml-dsa":                 zero(sig1, headerSize, split),
		"valid ml-dsa, ed25519 bit flipped":          flip(sig1, len(sig1)-10),
		"valid ed25519, ml-dsa bit flipped":          flip(sig1, headerSize+10),
	}
	for name, sig := range cases {
		t.Run(name, func(t *testing.T) { wantErr(t, p.Verify(pub, msg1, nil, sig), ErrInvalidSignature) })
	}

	// Each half signs M', not the message, so neither can be stripped off
	// and accepted as a stand-alone signature by the component key.
	raw := pub.Raw()
	mlPub, err := NewPublicKey(MLDSA65, raw[:mldsa65.PublicKeySize])
	mustNoErr(t, err)
	edPub, err := NewPublicKey(Ed25519, raw[mldsa65.PublicKeySize:])
	mustNoErr(t, err)
	mlSig, err := EncodeSignature(MLDSA65, sig1[headerSize:split])
	mustNoErr(t, err)
	edSig, err := EncodeSignature(Ed25519, sig1[split:])
	mustNoErr(t, err)
	wantErr(t, p.Verify(mlPub, msg1, nil, mlSig), ErrInvalidSignature)
	wantErr(t, p.Verify(edPub, msg1, nil, edSig), ErrInvalidSignature)
}

// RFC 8032 §7.1, tests 1-3. Ed25519 is deterministic, so the provider must
// reproduce the signatures byte for byte.
func TestEd25519RFC8032(t *testing.T) {
	vectors := []struct{ sk, pk, msg, sig string }{
		{
			"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
			"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
			"",
			"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
		},
		{
			"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
			"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
			"72",
			"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
		},
		{
			"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
			"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
			"af82",
			"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
		},
	}
	p := New()
	for i, v := range vectors {
		priv, err := NewPrivateKey(Ed25519, unhex(t, v.sk))
		mustNoErr(t, err)
		if !bytes.Equal(priv.Public().Raw(), unhex(t, v.pk)) {
			t.Fatalf("test %d: public key mismatch", i+1)
		}
		sig, err := p.Sign(priv, unhex(t, v.msg), nil)
		mustNoErr(t, err)
		alg, raw, err := DecodeSignature(sig)
		mustNoErr(t, err)
		if alg != Ed25519 || !bytes.Equal(raw, unhex(t, v.sig)) {
			t.Fatalf("test %d: signature %x", i+1, raw)
		}
		pub, err := NewPublicKey(Ed25519, unhex(t, v.pk))
		mustNoErr(t, err)
		enc, err := EncodeSignature(Ed25519, unhex(t, v.sig))
		mustNoErr(t, err)
		mustNoErr(t, p.Verify(pub, unhex(t, v.msg), nil, enc))
	}
}

// With a context the provider signs Ed25519ctx (RFC 8032 §5.1), which the
// standard library verifies with the same context and rejects without it.
func TestEd25519ContextInterop(t *testing.T) {
	p := New()
	priv, err := p.GenerateKey(Ed25519)
	mustNoErr(t, err)
	msg, context := []byte("m"), []byte("ctx")
	sig, err := p.Sign(priv, msg, context)
	mustNoErr(t, err)
	pub := ed25519.PublicKey(priv.Public().Raw())
	if ed25519.VerifyWithOptions(pub, msg, sig[headerSize:], &ed25519.Options{Context: "ctx"}) != nil {
		t.Fatal("stdlib rejects the Ed25519ctx signature")
	}
	if ed25519.Verify(pub, msg, sig[headerSize:]) {
		t.Fatal("context signature verifies as pure Ed25519")
	}
}

// compositeVector is the LAMPS working group's test vector for
// id-MLDSA65-Ed25519-SHA512, generated by an independent implementation
// (Python, dilithium-py + pyca/cryptography).
type compositeVector struct {
	M  string `json:"m"`
	PK string `json:"pk"`
	SK string `json:"sk"`
	S  string `json:"s"`
}

// TestCompositeLAMPSVector proves interoperability with the draft: the
// private key derives the published public key, and the published
// signature — whose ML-DSA half is hedged, so it cannot be reproduced —
// verifies under our construction of M' and ML-DSA context, and fails
// under any other context.
func TestCompositeLAMPSVector(t *testing.T) {
	var v compositeVector
	loadJSON(t, "composite_mldsa65_ed25519.json", &v)
	dec := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		mustNoErr(t, err)
		return b
	}
	msg, pk, sk, s := dec(v.M), dec(v.PK), dec(v.SK), dec(v.S)

	priv, err := NewPrivateKey(Ed25519MLDSA65, sk)
	mustNoErr(t, err)
	if !bytes.Equal(priv.Public().Raw(), pk) {
		t.Fatal("seed does not derive the published public key")
	}
	pub, err := NewPublicKey(Ed25519MLDSA65, pk)
	mustNoErr(t, err)
	sig, err := EncodeSignature(Ed25519MLDSA65, s)
	mustNoErr(t, err)
	p := New()
	mustNoErr(t, p.Verify(pub, msg, nil, sig))
	wantErr(t, p.Verify(pub, msg, []byte{0}, sig), ErrInvalidSignature)
	wantErr(t, p.Verify(pub, append(msg, '!'), nil, sig), ErrInvalidSignature)

	// Ed25519 is deterministic: our signature's Ed25519 half over the same
	// message must equal the published one.
	ours, err := p.Sign(priv, msg, nil)
	mustNoErr(t, err)
	if !bytes.Equal(ours[headerSize+mldsa65.SignatureSize:], s[mldsa65.SignatureSize:]) {
		t.Fatal("Ed25519 half differs from the published vector")
	}

	// And M' is exactly the draft's byte string.
	ph := sha512.Sum512(msg)
	want := append([]byte("CompositeAlgorithmSignatures2025COMPSIG-MLDSA65-Ed25519-SHA512\x00"), ph[:]...)
	if got := compositeMessage(nil, msg, nil); !bytes.Equal(got, want) {
		t.Fatalf("M' = %x", got)
	}
}

// acvpVectors are NIST ACVP known answers (see testdata/acvp.json).
type acvpVectors struct {
	MLDSA65KeyGen []struct {
		Seed, PK, SK string
	} `json:"mlDsa65KeyGen"`
	MLKEM768KeyGen []struct {
		D, Z, EK, DK string
	} `json:"mlKem768KeyGen"`
	MLKEM768Encap []struct {
		EK, M, C, K string
	} `json:"mlKem768Encap"`
}

// TestMLDSA65ACVPKeyGen: the seed a private key encodes expands to NIST's
// expected public and private keys. Signing is hedged, so signatures have
// no fixed answer; the composite vector above covers verification.
func TestMLDSA65ACVPKeyGen(t *testing.T) {
	var v acvpVectors
	loadJSON(t, "acvp.json", &v)
	if len(v.MLDSA65KeyGen) == 0 {
		t.Fatal("no vectors")
	}
	for _, tc := range v.MLDSA65KeyGen {
		priv, err := NewPrivateKey(MLDSA65, unhex(t, tc.Seed))
		mustNoErr(t, err)
		if !bytes.Equal(priv.Public().Raw(), unhex(t, tc.PK)) {
			t.Fatal("public key mismatch")
		}
		if !bytes.Equal(priv.key.(mldsa65Private).k.Bytes(), unhex(t, tc.SK)) {
			t.Fatal("expanded private key mismatch")
		}
	}
}

var benchMessage = []byte(strings.Repeat("creto", 52)) // 260 bytes, a typical token

// BenchmarkSign compares each provider signature with the bare library
// call on the same key, allocating its output as the provider must; "raw"
// for the composite is the ML-DSA and Ed25519 calls on a precomputed M'
// back to back.
func BenchmarkSign(b *testing.B) {
	p := New()
	for _, alg := range signatureAlgorithms {
		priv, err := p.GenerateKey(alg)
		mustNoErr(b, err)
		b.Run("provider/"+alg.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := p.Sign(priv, benchMessage, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/"+alg.String(), func(b *testing.B) { rawSign(b, priv) })
	}
}

func rawSign(b *testing.B, priv *PrivateKey) {
	switch k := priv.key.(type) {
	case ed25519Private:
		for b.Loop() {
			ed25519.Sign(ed25519.PrivateKey(k), benchMessage)
		}
	case mldsa65Private:
		for b.Loop() {
			sig := make([]byte, mldsa65.SignatureSize)
			if err := mldsa65.SignTo(k.k, benchMessage, nil, true, sig); err != nil {
				b.Fatal(err)
			}
		}
	case compositePrivate:
		mp := compositeMessage(nil, benchMessage, nil)
		for b.Loop() {
			sig := make([]byte, mldsa65.SignatureSize)
			if err := mldsa65.SignTo(k.ml.k, mp, compositeLabelBytes, true, sig); err != nil {
				b.Fatal(err)
			}
			ed25519.Sign(ed25519.PrivateKey(k.ed), mp)
		}
	}
}

// BenchmarkVerify compares verification with a parsed PublicKey against the
// library's verify with its own pre-parsed key.
func BenchmarkVerify(b *testing.B) {
	p := New()
	for _, alg := range signatureAlgorithms {
		priv, err := p.GenerateKey(alg)
		mustNoErr(b, err)
		pub := priv.Public()
		sig, err := p.Sign(priv, benchMessage, nil)
		mustNoErr(b, err)
		b.Run("provider/"+alg.String(), func(b *testing.B) {
			for b.Loop() {
				if err := p.Verify(pub, benchMessage, nil, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/"+alg.String(), func(b *testing.B) { rawVerify(b, pub, sig[headerSize:]) })
	}
}

func rawVerify(b *testing.B, pub *PublicKey, sig []byte) {
	ok := true
	switch k := pub.key.(type) {
	case ed25519Public:
		for b.Loop() {
			ok = ok && ed25519.Verify(ed25519.PublicKey(k), benchMessage, sig)
		}
	case mldsa65Public:
		for b.Loop() {
			ok = ok && mldsa65.Verify(k.k, benchMessage, nil, sig)
		}
	case compositePublic:
		mp := compositeMessage(nil, benchMessage, nil)
		for b.Loop() {
			ok = ok && mldsa65.Verify(k.ml.k, mp, compositeLabelBytes, sig[:mldsa65.SignatureSize]) &&
				ed25519.Verify(ed25519.PublicKey(k.ed), mp, sig[mldsa65.SignatureSize:])
		}
	}
	if !ok {
		b.Fatal("raw verify failed")
	}
}

// BenchmarkParsePublicKey shows why PublicKey is parsed once: for ML-DSA-65
// parsing costs several verifications.
func BenchmarkParsePublicKey(b *testing.B) {
	p := New()
	for _, alg := range signatureAlgorithms {
		priv, err := p.GenerateKey(alg)
		mustNoErr(b, err)
		enc := priv.Public().Bytes()
		b.Run("provider/"+alg.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := ParsePublicKey(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	raw := make([]byte, mldsa65.PublicKeySize)
	b.Run("raw/ml-dsa-65", func(b *testing.B) {
		for b.Loop() {
			var k mldsa65.PublicKey
			if err := k.UnmarshalBinary(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGenerateKey covers key generation for all six asymmetric schemes.
// The provider also unpacks a second, independent copy of the public key so
// a destroyed private key never corrupts it; for ML-DSA-65 that is one
// public-key parse on top of the raw key generation.
func BenchmarkGenerateKey(b *testing.B) {
	p := New()
	for _, alg := range asymmetric {
		b.Run("provider/"+alg.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := p.GenerateKey(alg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/"+alg.String(), func(b *testing.B) {
			for b.Loop() {
				if err := rawGenerateKey(alg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func rawGenerateKey(alg Algorithm) error {
	var err error
	switch alg {
	case Ed25519:
		_, _, err = ed25519.GenerateKey(nil)
	case MLDSA65:
		_, _, err = mldsa65.GenerateKey(nil)
	case Ed25519MLDSA65:
		if _, _, err = mldsa65.GenerateKey(nil); err == nil {
			_, _, err = ed25519.GenerateKey(nil)
		}
	case X25519:
		var sk, pk x25519.Key
		_, _ = rand.Read(sk[:])
		x25519.KeyGen(&pk, &sk)
	case MLKEM768:
		_, _, err = mlkem768.GenerateKeyPair(nil)
	case XWing:
		_, _, err = xwing.GenerateKeyPair(nil)
	}
	return err
}
