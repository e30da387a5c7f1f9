package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha3"
	"slices"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

// blake3Input is the official BLAKE3 test-vector input: byte i is i mod 251.
func blake3Input(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func TestHashKnownDigests(t *testing.T) {
	vectors := []struct {
		alg  Algorithm
		in   []byte
		want string
	}{
		{SHA256, nil, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{SHA256, []byte("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{SHA3_256, nil, "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"},
		{SHA3_256, []byte("abc"), "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"},
		// BLAKE3 official vectors (test_vectors.json, 32-byte prefix of the XOF).
		{BLAKE3, nil, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{BLAKE3, blake3Input(1), "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
		{BLAKE3, blake3Input(1023), "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
		{BLAKE3, blake3Input(31744), "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
	}
	p := New()
	for _, v := range vectors {
		got, err := p.Hash(v.alg, v.in)
		mustNoErr(t, err)
		if !bytes.Equal(got, unhex(t, v.want)) {
			t.Errorf("%v(%d bytes) = %x", v.alg, len(v.in), got)
		}
		h, err := p.NewHash(v.alg)
		mustNoErr(t, err)
		for chunk := range slices.Chunk(v.in, 1000) {
			h.Write(chunk)
		}
		if !bytes.Equal(h.Sum(nil), got) {
			t.Errorf("%v: streaming digest differs", v.alg)
		}
	}
}

// RFC 4231 test cases 1-7 (case 5 truncates the MAC to 128 bits).
func TestHMACRFC4231(t *testing.T) {
	aa131 := strings.Repeat("aa", 131)
	vectors := []struct{ key, data, mac string }{
		{strings.Repeat("0b", 20), "4869205468657265", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{strings.Repeat("aa", 20), strings.Repeat("dd", 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
		{"0102030405060708090a0b0c0d0e0f10111213141516171819", strings.Repeat("cd", 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
		{strings.Repeat("0c", 20), "546573742057697468205472756e636174696f6e", "a3b6167473100ee06e0c796c2955552b"},
		{aa131, "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374", "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{aa131, `5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a65206b
			657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865206b6579206e
			6565647320746f20626520686173686564206265666f7265206265696e6720757365642062792074686520484d4143
			20616c676f726974686d2e`, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	}
	p := New()
	for i, v := range vectors {
		key, data, want := unhex(t, v.key), unhex(t, v.data), unhex(t, v.mac)
		got, err := p.HMAC(HMACSHA256, key, data)
		mustNoErr(t, err)
		if !bytes.Equal(got[:len(want)], want) {
			t.Fatalf("case %d: %x", i+1, got)
		}
		mustNoErr(t, p.VerifyHMAC(HMACSHA256, key, data, got))
		wantErr(t, p.VerifyHMAC(HMACSHA256, key, data, flip(got, 31)), ErrAuthentication)
		wantErr(t, p.VerifyHMAC(HMACSHA256, key, flip(data, 0), got), ErrAuthentication)
		wantErr(t, p.VerifyHMAC(HMACSHA256, key, data, got[:16]), ErrAuthentication)
	}
}

// RFC 5869 Appendix A, test cases 1-3 (the SHA-256 ones).
func TestHKDFRFC5869(t *testing.T) {
	seq := func(from, to byte) []byte {
		var b []byte
		for c := from; ; c++ {
			b = append(b, c)
			if c == to {
				return b
			}
		}
	}
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	vectors := []struct {
		ikm, salt, info []byte
		okm             string
	}{
		{ikm, seq(0x00, 0x0c), seq(0xf0, 0xf9), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
		{seq(0x00, 0x4f), seq(0x60, 0xaf), seq(0xb0, 0xff), `b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09
			da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87`},
		{ikm, nil, nil, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
	}
	p := New()
	for i, v := range vectors {
		want := unhex(t, v.okm)
		got, err := p.HKDF(HKDFSHA256, v.ikm, v.salt, v.info, len(want))
		mustNoErr(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: %x", i+1, got)
		}
	}
	for _, n := range []int{0, -1, 255*32 + 1} {
		_, err := p.HKDF(HKDFSHA256, ikm, nil, nil, n)
		wantErr(t, err, ErrMalformed)
	}
	_, err := p.HKDF(HKDFSHA256, ikm, nil, nil, 255*32)
	mustNoErr(t, err)
}

var hashBenchSizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}}

// BenchmarkHash measures the three hashes at 1 KiB and 1 MiB, provider and
// library side by side; docs/crypto.md derives the default per use from it.
func BenchmarkHash(b *testing.B) {
	p := New()
	raw := map[Algorithm]func([]byte){
		SHA256:   func(d []byte) { sha256.Sum256(d) },
		SHA3_256: func(d []byte) { sha3.Sum256(d) },
		BLAKE3:   func(d []byte) { blake3.Sum256(d) },
	}
	for _, alg := range hashAlgorithms {
		for _, size := range hashBenchSizes {
			data := make([]byte, size.n)
			suffix := alg.String() + "/" + size.name
			b.Run("provider/"+suffix, func(b *testing.B) {
				b.SetBytes(int64(size.n))
				for b.Loop() {
					if _, err := p.Hash(alg, data); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("raw/"+suffix, func(b *testing.B) {
				b.SetBytes(int64(size.n))
				f := raw[alg]
				for b.Loop() {
					f(data)
				}
			})
		}
	}
}

func BenchmarkHMAC(b *testing.B) {
	p := New()
	key, data := make([]byte, 32), make([]byte, 1<<10)
	b.Run("provider/hmac-sha256/1KiB", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := p.HMAC(HMACSHA256, key, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw/hmac-sha256/1KiB", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write(data)
			m.Sum(nil)
		}
	})
}

func BenchmarkHKDF(b *testing.B) {
	p := New()
	secret, salt, info := make([]byte, 32), make([]byte, 32), []byte("creto-bench/v1")
	b.Run("provider/hkdf-sha256/32B", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.HKDF(HKDFSHA256, secret, salt, info, 32); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw/hkdf-sha256/32B", func(b *testing.B) {
		for b.Loop() {
			if _, err := hkdf.Key(sha256.New, secret, salt, string(info), 32); err != nil {
				b.Fatal(err)
			}
		}
	})
}
