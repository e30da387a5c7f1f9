package crypto

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"
)

func TestEncryptDecrypt(t *testing.T) {
	p := New()
	for _, alg := range aeadAlgorithms {
		for _, size := range []int{0, 1, 1000} {
			t.Run(fmt.Sprintf("%v/%d", alg, size), func(t *testing.T) {
				key, err := p.GenerateSymmetricKey(alg)
				mustNoErr(t, err)
				pt := bytes.Repeat([]byte{'a'}, size)
				aad := []byte("object-id=42")
				ct, err := p.Encrypt(key, pt, aad)
				mustNoErr(t, err)
				if len(ct) != headerSize+12+size+16 {
					t.Fatalf("ciphertext is %d bytes", len(ct))
				}
				got, err := p.Decrypt(key, ct, aad)
				mustNoErr(t, err)
				if !bytes.Equal(got, pt) {
					t.Fatal("plaintext differs")
				}
				again, err := p.Encrypt(key, pt, aad)
				mustNoErr(t, err)
				if bytes.Equal(ct, again) {
					t.Fatal("two encryptions reused a nonce")
				}
			})
		}
	}
}

func TestDecryptRejects(t *testing.T) {
	p := New()
	for _, alg := range aeadAlgorithms {
		t.Run(alg.String(), func(t *testing.T) {
			key, err := p.GenerateSymmetricKey(alg)
			mustNoErr(t, err)
			other, err := p.GenerateSymmetricKey(alg)
			mustNoErr(t, err)
			aad := []byte("aad")
			ct, err := p.Encrypt(key, []byte("attack at dawn"), aad)
			mustNoErr(t, err)

			positions := map[string]int{"nonce": headerSize, "ciphertext": headerSize + 12, "tag": len(ct) - 1}
			for where, i := range positions {
				_, err := p.Decrypt(key, flip(ct, i), aad)
				if err == nil {
					t.Fatalf("tampered %s accepted", where)
				}
				wantErr(t, err, ErrAuthentication)
			}
			_, err = p.Decrypt(key, ct, []byte("aae"))
			wantErr(t, err, ErrAuthentication)
			_, err = p.Decrypt(key, ct, nil)
			wantErr(t, err, ErrAuthentication)
			_, err = p.Decrypt(other, ct, aad)
			wantErr(t, err, ErrAuthentication)
			_, err = p.Decrypt(key, ct[:headerSize+12+15], aad)
			wantErr(t, err, ErrMalformed)
			_, err = p.Decrypt(key, ct[:2], aad)
			wantErr(t, err, ErrMalformed)
			_, err = p.Decrypt(key, flip(ct, 0), aad)
			wantErr(t, err, ErrMalformed)
			_, err = p.Decrypt(key, flip(ct, 1), aad)
			wantErr(t, err, ErrMalformed)
			_, err = p.Decrypt(key, ct[:len(ct)-1], aad)
			wantErr(t, err, ErrAuthentication)
		})
	}
	// An AES-GCM ciphertext is never opened with a ChaCha20-Poly1305 key.
	aes, err := p.GenerateSymmetricKey(AES256GCM)
	mustNoErr(t, err)
	chacha, err := NewSymmetricKey(ChaCha20Poly1305, aes.key)
	mustNoErr(t, err)
	ct, err := p.Encrypt(aes, []byte("m"), nil)
	mustNoErr(t, err)
	_, err = p.Decrypt(chacha, ct, nil)
	wantErr(t, err, ErrAuthentication, ErrAlgorithmMismatch)
}

// Known answers through the raw Seal/Open path: RFC 8439 §2.8.2 for
// ChaCha20-Poly1305 and test case 16 of the GCM specification (McGrew &
// Viega) for AES-256-GCM.
func TestAEADKnownAnswers(t *testing.T) {
	vectors := []struct {
		alg                          Algorithm
		key, nonce, aad, pt, ct, tag string
	}{
		{
			alg:   ChaCha20Poly1305,
			key:   "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
			nonce: "070000004041424344454647",
			aad:   "50515253c0c1c2c3c4c5c6c7",
			pt: fmt.Sprintf("%x", "Ladies and Gentlemen of the class of '99: If I could offer you only one tip "+
				"for the future, sunscreen would be it."),
			ct: `d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b
				1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
				3ff4def08e4b7a9de576d26586cec64b6116`,
			tag: "1ae10b594f09e26a7e902ecbd0600691",
		},
		{
			alg:   AES256GCM,
			key:   "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
			nonce: "cafebabefacedbaddecaf888",
			aad:   "feedfacedeadbeeffeedfacedeadbeefabaddad2",
			pt: `d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525
				b16aedf5aa0de657ba637b39`,
			ct: `522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838
				c5f61e6393ba7a0abcc9f662`,
			tag: "76fc6ece0f4e1768cddf8853bb2d551b",
		},
	}
	p := New()
	for _, v := range vectors {
		key, err := NewSymmetricKey(v.alg, unhex(t, v.key))
		mustNoErr(t, err)
		want := append(unhex(t, v.ct), unhex(t, v.tag)...)
		got, err := p.Seal(key, unhex(t, v.nonce), unhex(t, v.pt), unhex(t, v.aad))
		mustNoErr(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: seal %x", v.alg, got)
		}
		pt, err := p.Open(key, unhex(t, v.nonce), want, unhex(t, v.aad))
		mustNoErr(t, err)
		if !bytes.Equal(pt, unhex(t, v.pt)) {
			t.Fatalf("%v: open", v.alg)
		}
		_, err = p.Open(key, unhex(t, v.nonce), flip(want, 0), unhex(t, v.aad))
		wantErr(t, err, ErrAuthentication)
		_, err = p.Open(key, unhex(t, v.nonce)[1:], want, unhex(t, v.aad))
		wantErr(t, err, ErrMalformed)
		_, err = p.Seal(key, nil, nil, nil)
		wantErr(t, err, ErrMalformed)
		_, err = p.Open(key, unhex(t, v.nonce), want[:15], nil)
		wantErr(t, err, ErrMalformed)
	}
}

// DeriveSymmetricKey is HKDF-SHA256 straight into an AEAD key.
func TestDeriveSymmetricKey(t *testing.T) {
	p := New()
	secret := []byte("0123456789abcdef0123456789abcdef")
	k, err := p.DeriveSymmetricKey(AES256GCM, secret, []byte("salt"), []byte("storage-kek/v1"))
	mustNoErr(t, err)
	want, err := p.HKDF(HKDFSHA256, secret, []byte("salt"), []byte("storage-kek/v1"), 32)
	mustNoErr(t, err)
	if !bytes.Equal(k.key, want) {
		t.Fatal("derived key is not the HKDF output")
	}
	other, err := p.DeriveSymmetricKey(AES256GCM, secret, []byte("salt"), []byte("audit-kek/v1"))
	mustNoErr(t, err)
	if bytes.Equal(k.key, other.key) {
		t.Fatal("info does not separate keys")
	}
}

func TestNonceAndRandom(t *testing.T) {
	p := New()
	for _, alg := range aeadAlgorithms {
		n, err := p.Nonce(alg)
		mustNoErr(t, err)
		if len(n) != 12 {
			t.Fatalf("%v nonce is %d bytes", alg, len(n))
		}
	}
	a, err := p.RandomBytes(32)
	mustNoErr(t, err)
	b, err := p.RandomBytes(32)
	mustNoErr(t, err)
	if bytes.Equal(a, b) {
		t.Fatal("random bytes repeat")
	}
	if z, err := p.RandomBytes(0); err != nil || len(z) != 0 {
		t.Fatal("zero-length request")
	}
	_, err = p.RandomBytes(-1)
	wantErr(t, err, ErrMalformed)
	_, err = p.RandomBytes(1<<20 + 1)
	wantErr(t, err, ErrMalformed)
}

var aeadBenchSizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}}

// BenchmarkEncrypt compares Encrypt (random nonce, framed output) with the
// library's Seal after drawing a nonce the same way, and Seal (caller
// nonce) with the bare library Seal.
func BenchmarkEncrypt(b *testing.B) {
	p := New()
	for _, alg := range aeadAlgorithms {
		key, err := p.GenerateSymmetricKey(alg)
		mustNoErr(b, err)
		nonce := make([]byte, 12)
		for _, size := range aeadBenchSizes {
			pt := make([]byte, size.n)
			suffix := alg.String() + "/" + size.name
			b.Run("provider/"+suffix, func(b *testing.B) {
				b.SetBytes(int64(size.n))
				for b.Loop() {
					if _, err := p.Encrypt(key, pt, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("raw/"+suffix, func(b *testing.B) {
				b.SetBytes(int64(size.n))
				for b.Loop() {
					n := make([]byte, 12, 12+len(pt)+16)
					_, _ = rand.Read(n)
					key.aead.Seal(n, n, pt, nil)
				}
			})
			b.Run("provider-seal/"+suffix, func(b *testing.B) {
				b.SetBytes(int64(size.n))
				for b.Loop() {
					if _, err := p.Seal(key, nonce, pt, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("raw-seal/"+suffix, func(b *testing.B) {
				b.SetBytes(int64(size.n))
				for b.Loop() {
					key.aead.Seal(nil, nonce, pt, nil)
				}
			})
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	p := New()
	for _, alg := range aeadAlgorithms {
		key, err := p.GenerateSymmetricKey(alg)
		mustNoErr(b, err)
		for _, size := range aeadBenchSizes {
			ct, err := p.Encrypt(key, make([]byte, size.n), nil)
			mustNoErr(b, err)
			suffix := alg.String() + "/" + size.name
			b.Run("provider/"+suffix, func(b *testing.B) {
				b.SetBytes(int64(size.n))
				for b.Loop() {
					if _, err := p.Decrypt(key, ct, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("raw/"+suffix, func(b *testing.B) {
				b.SetBytes(int64(size.n))
				body := ct[headerSize:]
				for b.Loop() {
					if _, err := key.aead.Open(nil, body[:12], body[12:], nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
