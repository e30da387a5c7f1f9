package storage

import (
	"bytes"
	"errors"
	"testing"

	"github.com/creto-systems/creto/services/crypto"
)

// validHeader is a header as Store writes one.
func validHeader() *header {
	h := &header{aead: crypto.AES256GCM, kem: crypto.XWing, segmentSize: 1 << 20, keyVersion: 3,
		owner: "alice", bucket: "default", key: "reports/q3.pdf", vid: "0123456789abcdef0123456789abcdef",
		wrapped: bytes.Repeat([]byte{7}, 1168)}
	h.hpkeKEM, h.hpkeKDF, h.hpkeAEAD, _ = crypto.HPKESuiteIDs(h.kem, wrapAEAD)
	copy(h.salt[:], bytes.Repeat([]byte{1}, len(h.salt)))
	copy(h.noncePrefix[:], "prefix7")
	return h
}

func TestHeaderRoundTrip(t *testing.T) {
	h := validHeader()
	enc := h.encode()
	got, n, err := decodeHeader(append(bytes.Clone(enc), "segments follow"...))
	if err != nil || n != len(enc) {
		t.Fatalf("decode: %v (length %d of %d)", err, n, len(enc))
	}
	if !bytes.Equal(got.encode(), enc) || !bytes.Equal(got.dekInfo(), h.dekInfo()) {
		t.Fatal("the decoded header encodes differently")
	}
	if len(enc) > maxHeaderSize {
		t.Fatalf("a %d-byte header passes the %d-byte bound", len(enc), maxHeaderSize)
	}
	for i := range len(enc) {
		if _, _, err := decodeHeader(enc[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a header cut to %d bytes: %v", i, err)
		}
	}
}

// FuzzDecodeHeader: the envelope header is the one decoder of bytes read
// back from disk, which anyone with write access to the data directory
// controls. Arbitrary input never panics, fails only with ErrCorrupt, and
// whatever decodes is exactly the encoding of a valid header: one
// encoding per header, bounded in size.
func FuzzDecodeHeader(f *testing.F) {
	enc := validHeader().encode()
	f.Add(enc)
	f.Add(enc[:fixedHeaderSize])
	f.Add(append(bytes.Clone(enc), 0, 1, 2))
	f.Add([]byte(envelopeMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := decodeHeader(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error matches no sentinel: %v", err)
			}
			return
		}
		if n > maxHeaderSize || !bytes.Equal(h.encode(), b[:n]) {
			t.Fatalf("decoded %d bytes that do not re-encode to themselves", n)
		}
		if h.validate() != nil {
			t.Fatal("decoded an invalid header")
		}
	})
}

// FuzzCursor: a cursor comes from the client; whatever decodes is a
// position a listing could have produced.
func FuzzCursor(f *testing.F) {
	f.Add(encodeCursor("b\x00k"))
	f.Add(encodeCursor("b\x00k\x000123456789abcdef0123456789abcdef"))
	f.Add("")
	f.Fuzz(func(t *testing.T, c string) {
		pos, err := decodeCursor(c)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("error matches no sentinel: %v", err)
			}
			return
		}
		if c != "" && encodeCursor(pos) != c {
			t.Fatalf("cursor %q decodes to a position that encodes differently", c)
		}
	})
}
