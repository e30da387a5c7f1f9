package crypto

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// The encoded sizes are part of the format; pin them.
var encodedSizes = map[Algorithm]struct{ private, public, output int }{
	Ed25519:        {32, 32, 64},
	MLDSA65:        {32, 1952, 3309},
	Ed25519MLDSA65: {64, 1984, 3373},
	X25519:         {32, 32, 32},
	MLKEM768:       {64, 1184, 1088},
	XWing:          {32, 1216, 1120},
}

func TestAsymmetricKeyRoundTrip(t *testing.T) {
	p := New()
	for _, alg := range asymmetric {
		t.Run(alg.String(), func(t *testing.T) {
			priv, err := p.GenerateKey(alg)
			mustNoErr(t, err)
			size := encodedSizes[alg]

			enc, err := MarshalPrivateKey(priv)
			mustNoErr(t, err)
			if len(enc) != headerSize+size.private {
				t.Fatalf("private encoding is %d bytes, want %d", len(enc), headerSize+size.private)
			}
			again, err := ParsePrivateKey(enc)
			mustNoErr(t, err)
			if !again.Public().Equal(priv.Public()) || again.Algorithm() != alg {
				t.Fatal("parsed private key derives a different public key")
			}

			pubEnc := priv.Public().Bytes()
			if len(pubEnc) != headerSize+size.public {
				t.Fatalf("public encoding is %d bytes, want %d", len(pubEnc), headerSize+size.public)
			}
			pub, err := ParsePublicKey(pubEnc)
			mustNoErr(t, err)
			if !pub.Equal(priv.Public()) || pub.Algorithm() != alg {
				t.Fatal("public key does not round-trip")
			}
			fromRaw, err := NewPublicKey(alg, pub.Raw())
			mustNoErr(t, err)
			if !fromRaw.Equal(pub) {
				t.Fatal("Raw/NewPublicKey does not round-trip")
			}
			seeded, err := NewPrivateKey(alg, enc[headerSize:])
			mustNoErr(t, err)
			if !seeded.Public().Equal(pub) {
				t.Fatal("NewPrivateKey from the seed derives a different key")
			}
		})
	}
}

// corruptions returns labelled broken variants of a valid encoding.
func corruptions(enc []byte) map[string][]byte {
	withByte := func(i int, v byte) []byte { c := bytes.Clone(enc); c[i] = v; return c }
	return map[string][]byte{
		"nil":            nil,
		"header only":    enc[:headerSize],
		"short header":   enc[:headerSize-1],
		"truncated":      enc[:len(enc)-1],
		"oversize":       append(bytes.Clone(enc), 0),
		"version 0":      withByte(0, 0),
		"version 2":      withByte(0, 2),
		"unknown alg":    withByte(3, 0xee),
		"zero alg":       append([]byte{enc[0], enc[1], 0, 0}, enc[headerSize:]...),
		"other obj type": withByte(1, byte(objSignature)),
	}
}

func TestParseRejectsBadEncodings(t *testing.T) {
	p := New()
	for _, alg := range asymmetric {
		priv, err := p.GenerateKey(alg)
		mustNoErr(t, err)
		privEnc, err := MarshalPrivateKey(priv)
		mustNoErr(t, err)
		for label, b := range corruptions(privEnc) {
			t.Run(alg.String()+"/private/"+label, func(t *testing.T) {
				_, err := ParsePrivateKey(b)
				wantErr(t, err, expectedParseError(label))
			})
		}
		for label, b := range corruptions(priv.Public().Bytes()) {
			t.Run(alg.String()+"/public/"+label, func(t *testing.T) {
				_, err := ParsePublicKey(b)
				wantErr(t, err, expectedParseError(label))
			})
		}
		// A public key is not a private key and vice versa.
		_, err = ParsePrivateKey(priv.Public().Bytes())
		wantErr(t, err, ErrMalformed)
		_, err = ParsePublicKey(privEnc)
		wantErr(t, err, ErrMalformed)
		// Raw constructors check the length too.
		_, err = NewPublicKey(alg, priv.Public().Raw()[1:])
		wantErr(t, err, ErrMalformed)
		_, err = NewPrivateKey(alg, privEnc[headerSize+1:])
		wantErr(t, err, ErrMalformed)
	}
	// A header naming an AEAD algorithm is not an asymmetric key.
	_, err := ParsePublicKey(encode(objPublicKey, AES256GCM, make([]byte, 32)))
	wantErr(t, err, ErrUnsupportedAlgorithm)
}

func expectedParseError(label string) error {
	if strings.Contains(label, "alg") {
		return ErrUnsupportedAlgorithm
	}
	return ErrMalformed
}

func TestSymmetricKeyEncoding(t *testing.T) {
	p := New()
	for _, alg := range aeadAlgorithms {
		k, err := p.GenerateSymmetricKey(alg)
		mustNoErr(t, err)
		enc, err := MarshalSymmetricKey(k)
		mustNoErr(t, err)
		if len(enc) != headerSize+32 {
			t.Fatalf("%v: %d bytes", alg, len(enc))
		}
		again, err := ParseSymmetricKey(enc)
		mustNoErr(t, err)
		ct, err := p.Encrypt(k, []byte("m"), nil)
		mustNoErr(t, err)
		if pt, err := p.Decrypt(again, ct, nil); err != nil || string(pt) != "m" {
			t.Fatalf("%v: parsed key cannot decrypt: %v", alg, err)
		}
		for label, b := range corruptions(enc) {
			_, err := ParseSymmetricKey(b)
			wantErr(t, err, expectedParseError(label))
		}
		_, err = NewSymmetricKey(alg, make([]byte, 16))
		wantErr(t, err, ErrInvalidKey)
	}
	// A signature algorithm in a symmetric key header is refused.
	_, err := ParseSymmetricKey(encode(objSymmetricKey, Ed25519, make([]byte, 32)))
	wantErr(t, err, ErrUnsupportedAlgorithm)
}

// ML-KEM public keys with a coefficient >= q fail the FIPS 203 modulus
// check; X-Wing embeds one, so it must fail the same way.
func TestKEMPublicKeyValidation(t *testing.T) {
	p := New()
	for _, alg := range []Algorithm{MLKEM768, XWing} {
		priv, err := p.GenerateKey(alg)
		mustNoErr(t, err)
		raw := priv.Public().Raw()
		raw[0], raw[1] = 0xff, raw[1]|0x0f // first 12-bit coefficient = 4095 > q
		_, err = NewPublicKey(alg, raw)
		wantErr(t, err, ErrInvalidKey)
	}
}

func TestDestroyWipesAndDisables(t *testing.T) {
	p := New()
	for _, alg := range asymmetric {
		t.Run(alg.String(), func(t *testing.T) {
			priv, err := p.GenerateKey(alg)
			mustNoErr(t, err)
			enc, err := MarshalPrivateKey(priv)
			mustNoErr(t, err)
			twin, err := ParsePrivateKey(enc)
			mustNoErr(t, err)
			var sig []byte
			if alg.Kind() == KindSignature {
				sig, err = p.Sign(priv, []byte("m"), nil)
				mustNoErr(t, err)
			}
			seed := priv.seed
			inner := priv.key
			priv.Destroy()
			if !bytes.Equal(seed, make([]byte, len(seed))) {
				t.Fatal("seed not wiped")
			}
			switch k := inner.(type) {
			case ed25519Private:
				if !bytes.Equal(k, make([]byte, len(k))) {
					t.Fatal("ed25519 key not wiped")
				}
			case mldsa65Private:
				if *k.k != (mldsa65.PrivateKey{}) {
					t.Fatal("ml-dsa-65 key not wiped")
				}
			case compositePrivate:
				if *k.ml.k != (mldsa65.PrivateKey{}) || !bytes.Equal(k.ed, make([]byte, len(k.ed))) {
					t.Fatal("composite key not wiped")
				}
			case *x25519Private:
				if k.sk != [32]byte{} {
					t.Fatal("x25519 scalar not wiped")
				}
			}
			_, err = MarshalPrivateKey(priv)
			wantErr(t, err, ErrInvalidKey)
			if alg.Kind() == KindSignature {
				_, err = p.Sign(priv, []byte("m"), nil)
			} else {
				_, err = p.Decapsulate(priv, make([]byte, headerSize+encodedSizes[alg].output))
			}
			wantErr(t, err, ErrInvalidKey)
			// The public key shares nothing with the wiped state: it still
			// verifies, and still encapsulates to the same key pair.
			if alg.Kind() == KindSignature {
				mustNoErr(t, p.Verify(priv.Public(), []byte("m"), nil, sig))
			} else {
				ss, ct, err := p.Encapsulate(priv.Public())
				mustNoErr(t, err)
				got, err := p.Decapsulate(twin, ct)
				mustNoErr(t, err)
				if !bytes.Equal(got, ss) {
					t.Fatal("public key corrupted by Destroy")
				}
			}
			priv.Destroy() // idempotent
		})
	}

	k, err := p.GenerateSymmetricKey(AES256GCM)
	mustNoErr(t, err)
	raw := k.key
	k.Destroy()
	if !bytes.Equal(raw, make([]byte, len(raw))) {
		t.Fatal("symmetric key not wiped")
	}
	_, err = p.Encrypt(k, []byte("m"), nil)
	wantErr(t, err, ErrInvalidKey)
	_, err = MarshalSymmetricKey(k)
	wantErr(t, err, ErrInvalidKey)

	var nilKey *PrivateKey
	nilKey.Destroy()
	_, err = p.Sign(nilKey, nil, nil)
	wantErr(t, err, ErrInvalidKey)
	wantErr(t, p.Verify(nil, nil, nil, nil), ErrInvalidSignature, ErrInvalidKey)
	_, _, err = p.Encapsulate(nil)
	wantErr(t, err, ErrInvalidKey)
}

// Keys end up in log lines by accident; they must not print their secrets.
func TestKeysDoNotPrintSecrets(t *testing.T) {
	p := New()
	priv, err := p.GenerateKey(Ed25519)
	mustNoErr(t, err)
	sym, err := p.GenerateSymmetricKey(ChaCha20Poly1305)
	mustNoErr(t, err)
	for _, c := range []struct {
		v      any
		secret []byte
	}{{priv, priv.seed}, {sym, sym.key}} {
		out := fmt.Sprintf("%v %+v %#v %s %x", c.v, c.v, c.v, c.v, c.v)
		if strings.Contains(out, hex.EncodeToString(c.secret)) || strings.Contains(out, fmt.Sprint(c.secret)) {
			t.Fatalf("secret printed: %s", out)
		}
	}
	got := fmt.Sprint(priv, priv.Public(), sym, (*PrivateKey)(nil), (*PublicKey)(nil), (*SymmetricKey)(nil))
	want := "crypto.PrivateKey(ed25519) crypto.PublicKey(ed25519) crypto.SymmetricKey(chacha20-poly1305) " +
		"crypto.PrivateKey(nil) crypto.PublicKey(nil) crypto.SymmetricKey(nil)"
	if got != want || sym.Algorithm() != ChaCha20Poly1305 {
		t.Fatalf("printed %q", got)
	}
}
