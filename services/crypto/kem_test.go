package crypto

import (
	"bytes"
	"crypto/rand"
	"crypto/sha3"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudflare/circl/dh/x25519"
)

func TestKEMRoundTrip(t *testing.T) {
	p := New()
	for _, alg := range kemAlgorithms {
		t.Run(alg.String(), func(t *testing.T) {
			priv, err := p.GenerateKey(alg)
			mustNoErr(t, err)
			ss, ct, err := p.Encapsulate(priv.Public())
			mustNoErr(t, err)
			if len(ss) != 32 || len(ct) != headerSize+encodedSizes[alg].output {
				t.Fatalf("sizes: ss %d, ct %d", len(ss), len(ct))
			}
			got, err := p.Decapsulate(priv, ct)
			mustNoErr(t, err)
			if !bytes.Equal(got, ss) {
				t.Fatal("shared secrets differ")
			}
			ss2, ct2, err := p.Encapsulate(priv.Public())
			mustNoErr(t, err)
			if bytes.Equal(ss, ss2) || bytes.Equal(ct, ct2) {
				t.Fatal("two encapsulations repeated their output")
			}
		})
	}
}

// A tampered ciphertext or the wrong key must never yield the sender's
// secret. ML-KEM and X-Wing answer with an unrelated secret (implicit
// rejection); DHKEM either does the same or reports a low-order point.
func TestKEMNegative(t *testing.T) {
	p := New()
	for _, alg := range kemAlgorithms {
		t.Run(alg.String(), func(t *testing.T) {
			priv, err := p.GenerateKey(alg)
			mustNoErr(t, err)
			other, err := p.GenerateKey(alg)
			mustNoErr(t, err)
			ss, ct, err := p.Encapsulate(priv.Public())
			mustNoErr(t, err)

			for _, i := range []int{headerSize, len(ct) / 2, len(ct) - 1} {
				got, err := p.Decapsulate(priv, flip(ct, i))
				if err == nil && bytes.Equal(got, ss) {
					t.Fatalf("tampered byte %d still yields the secret", i)
				}
			}
			got, err := p.Decapsulate(other, ct)
			if err == nil && bytes.Equal(got, ss) {
				t.Fatal("wrong key yields the secret")
			}
			_, err = p.Decapsulate(priv, ct[:len(ct)-1])
			wantErr(t, err, ErrMalformed)
			_, err = p.Decapsulate(priv, append(bytes.Clone(ct), 0))
			wantErr(t, err, ErrMalformed)
			_, err = p.Decapsulate(priv, nil)
			wantErr(t, err, ErrMalformed)
			_, err = p.Decapsulate(priv, flip(ct, 0))
			wantErr(t, err, ErrMalformed)
			_, err = p.Decapsulate(priv, flip(ct, 1))
			wantErr(t, err, ErrMalformed)
		})
	}

	// A ciphertext of one KEM is refused by a key of another, even at the
	// same length (X25519 and a relabelled header).
	a, err := p.GenerateKey(MLKEM768)
	mustNoErr(t, err)
	b, err := p.GenerateKey(XWing)
	mustNoErr(t, err)
	_, ct, err := p.Encapsulate(a.Public())
	mustNoErr(t, err)
	_, err = p.Decapsulate(b, ct)
	wantErr(t, err, ErrMalformed, ErrAlgorithmMismatch)
}

func TestX25519RejectsLowOrderPoints(t *testing.T) {
	p := New()
	zero, err := NewPublicKey(X25519, make([]byte, 32))
	mustNoErr(t, err)
	_, _, err = p.Encapsulate(zero)
	wantErr(t, err, ErrInvalidKey)

	priv, err := p.GenerateKey(X25519)
	mustNoErr(t, err)
	_, err = p.Decapsulate(priv, encode(objKEMCiphertext, X25519, make([]byte, 32)))
	wantErr(t, err, ErrMalformed)
}

// RFC 9180 Appendix A.1 (DHKEM(X25519, HKDF-SHA256)): with the vector's
// ephemeral key the provider produces the published enc and shared secret,
// and the recipient key decapsulates to the same secret.
func TestDHKEMX25519RFC9180(t *testing.T) {
	skEm := unhex(t, "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736")
	skRm := unhex(t, "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8")
	pkRm := unhex(t, "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d")
	enc := unhex(t, "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
	shared := unhex(t, "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc")

	priv, err := NewPrivateKey(X25519, skRm)
	mustNoErr(t, err)
	if !bytes.Equal(priv.Public().Raw(), pkRm) {
		t.Fatal("pkRm mismatch")
	}
	ss, ct, err := priv.Public().encapsulate(skEm)
	mustNoErr(t, err)
	if !bytes.Equal(ct[headerSize:], enc) || !bytes.Equal(ss, shared) {
		t.Fatalf("encap: enc %x ss %x", ct[headerSize:], ss)
	}
	got, err := New().Decapsulate(priv, encode(objKEMCiphertext, X25519, enc))
	mustNoErr(t, err)
	if !bytes.Equal(got, shared) {
		t.Fatalf("decap: %x", got)
	}
}

// NIST ACVP ML-KEM-768: key generation from (d, z) and encapsulation from m
// give the expected keys, ciphertext and shared secret.
func TestMLKEM768ACVP(t *testing.T) {
	var v acvpVectors
	loadJSON(t, "acvp.json", &v)
	if len(v.MLKEM768KeyGen) == 0 || len(v.MLKEM768Encap) == 0 {
		t.Fatal("no vectors")
	}
	for _, tc := range v.MLKEM768KeyGen {
		priv, err := NewPrivateKey(MLKEM768, append(unhex(t, tc.D), unhex(t, tc.Z)...))
		mustNoErr(t, err)
		if !bytes.Equal(priv.Public().Raw(), unhex(t, tc.EK)) {
			t.Fatal("encapsulation key mismatch")
		}
		dk, err := priv.key.(mlkem768Private).k.MarshalBinary()
		mustNoErr(t, err)
		if !bytes.Equal(dk, unhex(t, tc.DK)) {
			t.Fatal("decapsulation key mismatch")
		}
	}
	for _, tc := range v.MLKEM768Encap {
		pub, err := NewPublicKey(MLKEM768, unhex(t, tc.EK))
		mustNoErr(t, err)
		ss, ct, err := pub.encapsulate(unhex(t, tc.M))
		mustNoErr(t, err)
		if !bytes.Equal(ct[headerSize:], unhex(t, tc.C)) || !bytes.Equal(ss, unhex(t, tc.K)) {
			t.Fatal("encapsulation mismatch")
		}
	}
}

// TestXWingDraftVectors regenerates the X-Wing draft's spec/test-vectors.txt
// through the provider's key derivation and encapsulation, and compares
// its SHAKE-128 digest with the digest of the published file (the same
// check circl's own tests make).
func TestXWingDraftVectors(t *testing.T) {
	const want = "1bcd0057d861d6b866239936cadcaeee1ec0164dedc181c386e9e54fe46156fe"
	rng := sha3.NewSHAKE128()
	var w strings.Builder
	for range 3 {
		seed := make([]byte, 32)
		_, _ = rng.Read(seed)
		writeVectorHex(&w, "seed", seed)
		priv, err := NewPrivateKey(XWing, seed)
		mustNoErr(t, err)
		sk, err := MarshalPrivateKey(priv)
		mustNoErr(t, err)
		writeVectorHex(&w, "sk", sk[headerSize:])
		writeVectorHex(&w, "pk", priv.Public().Raw())
		eseed := make([]byte, 64)
		_, _ = rng.Read(eseed)
		writeVectorHex(&w, "eseed", eseed)
		ss, ct, err := priv.Public().encapsulate(eseed)
		mustNoErr(t, err)
		writeVectorHex(&w, "ct", ct[headerSize:])
		writeVectorHex(&w, "ss", ss)
		got, err := New().Decapsulate(priv, ct)
		mustNoErr(t, err)
		if !bytes.Equal(got, ss) {
			t.Fatal("decapsulation differs")
		}
		w.WriteString("\n")
	}
	digest := sha3.NewSHAKE128()
	digest.Write([]byte(w.String()))
	sum := make([]byte, 32)
	_, _ = digest.Read(sum)
	if got := fmt.Sprintf("%x", sum); got != want {
		t.Fatalf("test-vectors.txt digest %s, want %s", got, want)
	}
}

// writeVectorHex reproduces the layout of the draft's test-vectors.txt:
// short values on the label's line, long ones wrapped at 72 hex digits.
func writeVectorHex(w *strings.Builder, label string, val []byte) {
	const width, indent = 74, "  "
	h := fmt.Sprintf("%x", val)
	if len(label)+len(h)+5 < width {
		fmt.Fprintf(w, "%s     %s\n", label, h)
		return
	}
	fmt.Fprintf(w, "%s\n", label)
	for len(h) > 0 {
		n := min(len(h), width-len(indent))
		fmt.Fprintf(w, "%s%s\n", indent, h[:n])
		h = h[n:]
	}
}

// BenchmarkEncapsulate compares provider encapsulation with the library's
// on its own parsed key, allocating the outputs as the provider must. No
// library exposes DHKEM encapsulation, so "raw" X25519 is circl's two
// scalar multiplications plus the RFC 9180 HKDF steps.
func BenchmarkEncapsulate(b *testing.B) {
	p := New()
	for _, alg := range kemAlgorithms {
		priv, err := p.GenerateKey(alg)
		mustNoErr(b, err)
		pub := priv.Public()
		b.Run("provider/"+alg.String(), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := p.Encapsulate(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/"+alg.String(), func(b *testing.B) {
			size := encodedSizes[alg].output
			switch k := pub.key.(type) {
			case x25519Public:
				for b.Loop() {
					ss := make([]byte, 32)
					var skE, pkE, dh x25519.Key
					_, _ = rand.Read(skE[:])
					x25519.KeyGen(&pkE, &skE)
					x25519.Shared(&dh, &skE, k.pkR)
					if err := dhkemExtractAndExpand(ss, dh[:], pkE[:], k.pkR[:]); err != nil {
						b.Fatal(err)
					}
				}
			case mlkem768Public:
				for b.Loop() {
					ct, ss := make([]byte, size), make([]byte, 32)
					k.k.EncapsulateTo(ct, ss, nil)
				}
			case xwingPublic:
				for b.Loop() {
					ct, ss := make([]byte, size), make([]byte, 32)
					k.k.EncapsulateTo(ct, ss, nil)
				}
			}
		})
	}
}

func BenchmarkDecapsulate(b *testing.B) {
	p := New()
	for _, alg := range kemAlgorithms {
		priv, err := p.GenerateKey(alg)
		mustNoErr(b, err)
		_, ct, err := p.Encapsulate(priv.Public())
		mustNoErr(b, err)
		b.Run("provider/"+alg.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := p.Decapsulate(priv, ct); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/"+alg.String(), func(b *testing.B) {
			raw := ct[headerSize:]
			switch k := priv.key.(type) {
			case *x25519Private:
				for b.Loop() {
					ss := make([]byte, 32)
					var dh x25519.Key
					x25519.Shared(&dh, &k.sk, (*x25519.Key)(raw))
					if err := dhkemExtractAndExpand(ss, dh[:], raw, k.pk[:]); err != nil {
						b.Fatal(err)
					}
				}
			case mlkem768Private:
				for b.Loop() {
					ss := make([]byte, 32)
					k.k.DecapsulateTo(ss, raw)
				}
			case xwingPrivate:
				for b.Loop() {
					ss := make([]byte, 32)
					k.k.DecapsulateTo(ss, raw)
				}
			}
		})
	}
}
