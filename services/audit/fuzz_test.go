package audit

import (
	"bytes"
	"context"
	"testing"
)

// FuzzDecodeLeaf: any bytes either fail to decode with ErrMalformed or
// decode to a record whose encoding is exactly those bytes.
func FuzzDecodeLeaf(f *testing.F) {
	full := fullRecord()
	for _, r := range []Record{full, {Timestamp: full.Timestamp, LoggedAt: full.LoggedAt, Who: "a", What: "b"}} {
		leaf, err := EncodeLeaf(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(leaf)
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeLeaf(b)
		if err != nil {
			return
		}
		again, err := EncodeLeaf(&r)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		if who, err := leafWho(b); err != nil || who != r.Who {
			t.Fatalf("leafWho %q %v, the record says %q", who, err, r.Who)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decode/encode is not the identity:\n in  %x\n out %x", b, again)
		}
	})
}

// FuzzParseCheckpointText: a parsed checkpoint without extension lines
// marshals back to its text.
func FuzzParseCheckpointText(f *testing.F) {
	f.Add("log.example\n12\n" + "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" + "\n")
	f.Add("o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCheckpointText(s)
		if err != nil {
			return
		}
		if m := c.marshalText(); len(m) <= len(s) && s[:len(m)] != m {
			t.Fatalf("parsed %q as %+v, which marshals to %q", s, c, m)
		}
	})
}

// FuzzOpenCheckpoint: no input makes Open panic or accept a note that
// lacks either of the log's two signatures.
func FuzzOpenCheckpoint(f *testing.F) {
	k := testKeys(f, "log.example/fuzz")
	good := testCheckpoint(f, k, 7)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("log.example/fuzz\n7\nAAAA\n\n— log.example/fuzz AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := k.verifier.Open(b)
		if err != nil {
			return
		}
		// Whatever verified must be the signed checkpoint itself: the
		// signatures cover the text, so only signature lines may differ.
		if c.Size != 7 || !bytes.HasPrefix(b, []byte(c.marshalText())) {
			t.Fatalf("accepted %q as %+v", b, c)
		}
	})
}

// FuzzVerifyExport: an arbitrary export never panics the verifier, and
// altering a real one is never reported as intact unless the bytes still
// carry the same log.
func FuzzVerifyExport(f *testing.F) {
	e, v := tamperLog(f)
	var buf bytes.Buffer
	if _, err := Export(context.Background(), e.store, &buf); err != nil {
		f.Fatal(err)
	}
	good := buf.Bytes()
	f.Add(good, 100, byte(1))
	f.Add(good[:200], 0, byte(0))
	f.Fuzz(func(t *testing.T, b []byte, at int, x byte) {
		if len(b) > 0 && x != 0 {
			b = bytes.Clone(b)
			b[uint(at)%uint(len(b))] ^= x
		}
		rep, err := VerifyExport(context.Background(), bytes.NewReader(b), v)
		if err == nil && rep.Entries != 40 {
			t.Fatalf("a different log verified: %+v", rep)
		}
	})
}
