package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// streamFixture is one stream's parameters.
type streamFixture struct {
	key               *SymmetricKey
	salt, prefix, inf []byte
}

func newStreamFixture(t testing.TB, alg Algorithm) streamFixture {
	t.Helper()
	key, err := NewSymmetricKey(alg, bytes.Repeat([]byte{0x42}, 32))
	mustNoErr(t, err)
	return streamFixture{
		key:    key,
		salt:   bytes.Repeat([]byte{0x5a}, StreamSaltSize),
		prefix: []byte("prefix7"),
		inf:    []byte("creto-test/v1 header"),
	}
}

func (f streamFixture) sealer(t testing.TB) *StreamSealer {
	t.Helper()
	s, err := NewStreamSealer(f.key, f.salt, f.prefix, f.inf)
	mustNoErr(t, err)
	return s
}

func (f streamFixture) opener(t testing.TB) *StreamOpener {
	t.Helper()
	o, err := NewStreamOpener(f.key, f.salt, f.prefix, f.inf)
	mustNoErr(t, err)
	return o
}

// seal seals the segments in order, the last one final.
func (f streamFixture) seal(t testing.TB, segments ...[]byte) [][]byte {
	t.Helper()
	s := f.sealer(t)
	out := make([][]byte, len(segments))
	for i, p := range segments {
		var err error
		out[i], err = s.Seal(nil, p, i == len(segments)-1)
		mustNoErr(t, err)
	}
	return out
}

// referenceSegment recomputes segment i with the standard library alone,
// following the construction as documented, so the sealer is checked
// against the specification rather than against itself.
func referenceSegment(t testing.TB, alg Algorithm, key, salt, prefix, info, pt []byte, i uint32, final bool) []byte {
	t.Helper()
	k, err := hkdf.Key(sha256.New, key, salt, string(info), 32)
	mustNoErr(t, err)
	var a cipher.AEAD
	if alg == AES256GCM {
		block, err := aes.NewCipher(k)
		mustNoErr(t, err)
		a, err = cipher.NewGCM(block)
		mustNoErr(t, err)
	} else {
		a, err = chacha20poly1305.New(k)
		mustNoErr(t, err)
	}
	nonce := append(bytes.Clone(prefix), 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(nonce[7:], i)
	if final {
		nonce[11] = 1
	}
	return a.Seal(nil, nonce, pt, nil)
}

func TestStreamMatchesReference(t *testing.T) {
	for _, alg := range aeadAlgorithms {
		f := newStreamFixture(t, alg)
		segs := [][]byte{[]byte("first segment"), []byte("second"), []byte("third and final")}
		got := f.seal(t, segs...)
		for i, p := range segs {
			want := referenceSegment(t, alg, f.key.key, f.salt, f.prefix, f.inf, p, uint32(i), i == len(segs)-1)
			if !bytes.Equal(got[i], want) {
				t.Fatalf("%v segment %d differs from the reference construction", alg, i)
			}
		}
	}
}

// TestStreamKnownAnswer pins the bytes: every stored object depends on
// them, so a change here is a format change.
func TestStreamKnownAnswer(t *testing.T) {
	f := newStreamFixture(t, AES256GCM)
	got := f.seal(t, []byte("hello, "), []byte("world"))
	want := []string{"a37e721cc679104f0a5657e0d76d912dc6bbacacd6aecd", "1f93bf984140ad249a9374c34daf70f4726d262fb6"}
	for i := range want {
		if fmt.Sprintf("%x", got[i]) != want[i] {
			t.Errorf("segment %d = %x, want %s", i, got[i], want[i])
		}
	}
}

func TestStreamRoundTrip(t *testing.T) {
	for _, alg := range aeadAlgorithms {
		for _, n := range []int{1, 2, 7} {
			t.Run(fmt.Sprintf("%v/%d", alg, n), func(t *testing.T) {
				f := newStreamFixture(t, alg)
				var segs [][]byte
				for i := range n {
					segs = append(segs, bytes.Repeat([]byte{byte(i)}, 100))
				}
				segs[n-1] = segs[n-1][:37] // a short final segment
				sealed := f.seal(t, segs...)
				o := f.opener(t)
				for i, c := range sealed {
					if len(c) != len(segs[i])+StreamOverhead {
						t.Fatalf("segment %d is %d bytes", i, len(c))
					}
					if o.Finished() {
						t.Fatal("finished before the final segment")
					}
					// In place, as a reader reusing one buffer does.
					pt, err := o.Open(c[:0], c, i == n-1)
					mustNoErr(t, err)
					if !bytes.Equal(pt, segs[i]) {
						t.Fatalf("segment %d opened to other bytes", i)
					}
				}
				if !o.Finished() || o.Segments() != uint64(n) {
					t.Fatalf("finished %v after %d segments", o.Finished(), o.Segments())
				}
			})
		}
	}
}

func TestStreamEmpty(t *testing.T) {
	f := newStreamFixture(t, AES256GCM)
	sealed := f.seal(t, nil)
	if len(sealed[0]) != StreamOverhead {
		t.Fatalf("empty stream is %d bytes", len(sealed[0]))
	}
	o := f.opener(t)
	pt, err := o.Open(nil, sealed[0], true)
	mustNoErr(t, err)
	if len(pt) != 0 || !o.Finished() {
		t.Fatal("empty stream did not open to nothing")
	}
}

// TestStreamAttacks: every rearrangement of a stream's segments that is not
// the original must fail to open, and the opener must stay failed. A reader
// frames segments itself and passes final for the last one it finds, so a
// truncated stream shows up as a non-final segment opened as final.
func TestStreamAttacks(t *testing.T) {
	f := newStreamFixture(t, AES256GCM)
	segs := [][]byte{[]byte("aaaa"), []byte("bbbb"), []byte("cccc"), []byte("dd")}
	s := f.seal(t, segs...)
	other := streamFixture{key: f.key, salt: f.salt, prefix: f.prefix, inf: []byte("another object")}.seal(t, segs...)
	otherSalt := streamFixture{key: f.key, salt: bytes.Repeat([]byte{1}, 32), prefix: f.prefix, inf: f.inf}.seal(t, segs...)
	otherKey, err := NewSymmetricKey(AES256GCM, bytes.Repeat([]byte{0x43}, 32))
	mustNoErr(t, err)
	otherKeyed := streamFixture{key: otherKey, salt: f.salt, prefix: f.prefix, inf: f.inf}.seal(t, segs...)

	type seg struct {
		c     []byte
		final bool
	}
	cases := map[string][]seg{
		"reordered":                 {{s[1], false}, {s[0], false}, {s[2], false}, {s[3], true}},
		"truncated at a boundary":   {{s[0], false}, {s[1], false}, {s[2], true}},
		"truncated to the first":    {{s[0], true}},
		"middle segment dropped":    {{s[0], false}, {s[2], false}, {s[3], true}},
		"segment repeated":          {{s[0], false}, {s[0], false}},
		"final flag forged":         {{s[0], false}, {s[1], false}, {s[2], false}, {s[3], false}},
		"spliced from other info":   {{s[0], false}, {other[1], false}},
		"spliced from other salt":   {{s[0], false}, {otherSalt[1], false}},
		"spliced from other key":    {{s[0], false}, {otherKeyed[1], false}},
		"bit flipped":               {{s[0], false}, {flip(s[1], 2), false}},
		"tag truncated":             {{s[0], false}, {s[1][:len(s[1])-1], false}},
		"shorter than a tag":        {{s[0][:StreamOverhead-1], false}},
		"extended past the final":   {{s[0], false}, {s[1], false}, {s[2], false}, {s[3], true}, {s[3], false}},
		"final opened as not final": {{s[0], false}, {s[1], false}, {s[2], false}, {s[3], false}},
	}
	for name, stream := range cases {
		o := f.opener(t)
		failed := false
		for i, sg := range stream {
			_, err := o.Open(nil, sg.c, sg.final)
			if err != nil {
				wantErr(t, err, ErrAuthentication)
				failed = true
				// Once failed, even the genuine next segment is refused.
				if i+1 < len(s) {
					if _, err := o.Open(nil, s[i+1], i+1 == len(s)-1); err == nil {
						t.Fatalf("%s: the opener recovered after a failure", name)
					}
				}
				break
			}
		}
		if !failed {
			t.Fatalf("%s: opened without error", name)
		}
	}
}

func TestStreamSealerLimits(t *testing.T) {
	f := newStreamFixture(t, AES256GCM)
	s := f.sealer(t)
	_, err := s.Seal(nil, []byte("last"), true)
	mustNoErr(t, err)
	_, err = s.Seal(nil, []byte("more"), false)
	wantErr(t, err, ErrMalformed)
	if s.Segments() != 1 {
		t.Fatalf("%d segments after a refused seal", s.Segments())
	}

	s = f.sealer(t)
	s.st.next = maxStreamSegments - 1
	_, err = s.Seal(nil, nil, false)
	mustNoErr(t, err)
	_, err = s.Seal(nil, nil, true)
	wantErr(t, err, ErrMalformed)
}

func TestStreamBadParameters(t *testing.T) {
	f := newStreamFixture(t, AES256GCM)
	_, err := NewStreamSealer(f.key, f.salt[:31], f.prefix, nil)
	wantErr(t, err, ErrMalformed)
	_, err = NewStreamSealer(f.key, f.salt, f.prefix[:6], nil)
	wantErr(t, err, ErrMalformed)
	_, err = NewStreamOpener(f.key, f.salt, f.prefix, make([]byte, maxHPKEInfo+1))
	wantErr(t, err, ErrMalformed)
	_, err = NewStreamOpener(nil, f.salt, f.prefix, nil)
	wantErr(t, err, ErrInvalidKey)
	dead, err := NewSymmetricKey(AES256GCM, make([]byte, 32))
	mustNoErr(t, err)
	dead.Destroy()
	_, err = NewStreamSealer(dead, f.salt, f.prefix, nil)
	wantErr(t, err, ErrInvalidKey)
}

// FuzzStreamOpen: arbitrary segments never panic and never open, except the
// genuine ones in their place.
func FuzzStreamOpen(f *testing.F) {
	fx := newStreamFixture(f, AES256GCM)
	s := fx.seal(f, []byte("first"), []byte("final"))
	f.Add(s[0], s[1], false)
	f.Add(s[1], s[0], true)
	f.Add(s[0][:10], s[1], true)
	f.Fuzz(func(t *testing.T, a, b []byte, finalA bool) {
		o := fx.opener(t)
		pa, err := o.Open(nil, a, finalA)
		if err != nil {
			requireSentinel(t, err)
			return
		}
		if !bytes.Equal(a, s[0]) || finalA || string(pa) != "first" {
			t.Fatal("a forged first segment opened")
		}
		pb, err := o.Open(nil, b, true)
		if err != nil {
			requireSentinel(t, err)
			return
		}
		if !bytes.Equal(b, s[1]) || string(pb) != "final" || !o.Finished() {
			t.Fatal("a forged final segment opened")
		}
	})
}

// BenchmarkStream seals and opens 1 MiB segments in place, beside one raw
// AES-256-GCM call on the same buffer (opening copies the ciphertext back
// first in both).
func BenchmarkStream(b *testing.B) {
	f := newStreamFixture(b, AES256GCM)
	buf := make([]byte, 1<<20, 1<<20+StreamOverhead)
	b.Run("seal-1MiB", func(b *testing.B) {
		b.SetBytes(1 << 20)
		s := f.sealer(b)
		for b.Loop() {
			s.st.next = 0 // one segment index over and over: fine for timing, never for data
			if _, err := s.Seal(buf[:0], buf, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-gcm-1MiB", func(b *testing.B) {
		b.SetBytes(1 << 20)
		nonce := make([]byte, 12)
		for b.Loop() {
			f.key.aead.Seal(buf[:0], nonce, buf, nil)
		}
	})
	ct := f.seal(b, buf)[0]
	b.Run("raw-gcm-open-1MiB", func(b *testing.B) {
		b.SetBytes(1 << 20)
		nonce := make([]byte, 12)
		raw := f.key.aead.Seal(nil, nonce, buf, nil)
		work := make([]byte, len(raw))
		for b.Loop() {
			copy(work, raw)
			if _, err := f.key.aead.Open(work[:0], nonce, work, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Each iteration also derives the stream key (HKDF and the AES key
	// schedule), as opening an object does once.
	b.Run("open-1MiB", func(b *testing.B) {
		b.SetBytes(1 << 20)
		work := make([]byte, len(ct))
		for b.Loop() {
			copy(work, ct)
			o := f.opener(b)
			if _, err := o.Open(work[:0], work, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}
