package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/nhi"
)

// Every way of altering a stored envelope — its header, its chunks, their
// order, its length, or splicing in another object's bytes — fails the
// read with a typed error, and never returns a byte that was not stored
// in that place. Restoring the file restores the object: nothing else was
// lost.
func TestTamperedEnvelopes(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	const seg = minChunkSize + 16
	data := payload(3*minChunkSize+100, 1)
	md := e.put(alice, StoreRequest{Key: "victim"}, data)
	donor := e.put(alice, StoreRequest{Key: "donor"}, payload(3*minChunkSize+100, 2))
	orig, err := os.ReadFile(e.fileOf(md.Ref))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := os.ReadFile(e.fileOf(donor.Ref))
	_, hlen, err := decodeHeader(orig)
	if err != nil {
		t.Fatal(err)
	}
	body := orig[hlen:]
	segment := func(b []byte, i int) []byte { return b[i*seg : min((i+1)*seg, len(b))] }
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	head := orig[:hlen]
	at := func(off int, f func([]byte)) []byte { b := bytes.Clone(orig); f(b[off:]); return b }

	cases := []struct {
		name      string
		envelope  []byte
		want      error
		plaintext int // bytes the reader may return before failing
	}{
		{"magic", at(0, func(b []byte) { b[0] = 'X' }), ErrCorrupt, 0},
		{"format version", at(4, func(b []byte) { b[0] = 2 }), ErrCorrupt, 0},
		{"data algorithm", at(6, func(b []byte) { b[1] = 0x02 }), ErrDecryptionFailed, 0}, // aes → chacha: wrapped key is bound to it
		{"segment size", at(16, func(b []byte) { binary.BigEndian.PutUint32(b, 2*minChunkSize) }), ErrCorrupt, 0},
		{"key version", at(20, func(b []byte) { b[3] = 7 }), ErrDecryptionFailed, 0},
		{"salt", at(30, func(b []byte) { b[0] ^= 1 }), ErrDecryptionFailed, 0},
		{"nonce prefix", at(57, func(b []byte) { b[0] ^= 1 }), ErrDecryptionFailed, 0},
		{"owner", at(64, func(b []byte) { b[0] = 'b' }), ErrCorrupt, 0},
		{"wrapped key", at(hlen-10, func(b []byte) { b[0] ^= 1 }), ErrDecryptionFailed, 0},
		{"chunk byte", at(hlen+seg+100, func(b []byte) { b[0] ^= 1 }), ErrDecryptionFailed, minChunkSize},
		{"tag byte", at(hlen+seg-1, func(b []byte) { b[0] ^= 1 }), ErrDecryptionFailed, 0},
		{"chunks reordered", join(head, segment(body, 1), segment(body, 0), body[2*seg:]), ErrDecryptionFailed, 0},
		{"chunk repeated", join(head, segment(body, 0), segment(body, 0), body[2*seg:]), ErrDecryptionFailed, minChunkSize},
		{"chunk dropped", join(head, segment(body, 0), body[2*seg:]), ErrDecryptionFailed, minChunkSize},
		{"truncated at a chunk boundary", join(head, body[:3*seg]), ErrDecryptionFailed, 2 * minChunkSize},
		{"truncated inside the last chunk", orig[:len(orig)-1], ErrDecryptionFailed, 3 * minChunkSize},
		{"truncated to the header", head, ErrDecryptionFailed, 0},
		{"extended by a byte", join(orig, []byte{0}), ErrDecryptionFailed, 3 * minChunkSize},
		{"extended by the last chunk", join(orig, segment(body, 3)), ErrDecryptionFailed, 3 * minChunkSize},
		{"extended by a whole chunk", join(orig, segment(body, 0)), ErrDecryptionFailed, 3 * minChunkSize},
		{"chunk spliced from another object", join(head, segment(body, 0), segment(other[hlen:], 1), body[2*seg:]), ErrDecryptionFailed, minChunkSize},
		{"another object's envelope", other, ErrCorrupt, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(e.fileOf(md.Ref), c.envelope, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := e.s.RetrieveStream(ctx, alice, md.Ref)
			var got []byte
			if err == nil {
				got, err = readAll(r)
				r.Close()
			}
			wantErr(t, c.name, err, c.want)
			if len(got) > c.plaintext || !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("returned %d bytes (%v), at most %d genuine ones allowed", len(got), bytes.Equal(got, data[:len(got)]), c.plaintext)
			}
			_, err = e.s.Retrieve(ctx, alice, md.Ref)
			wantErr(t, c.name+" (whole)", err, c.want)
		})
	}
	if err := os.WriteFile(e.fileOf(md.Ref), orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.get(alice, md.Ref), data) {
		t.Fatal("the restored envelope does not read back")
	}

	// A missing file is corruption, not absence: the record says it exists.
	os.Remove(e.fileOf(md.Ref))
	_, err = e.s.Retrieve(ctx, alice, md.Ref)
	wantErr(t, "missing file", err, ErrCorrupt)
}

func TestTamperedInlineEnvelope(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	md := e.put(alice, StoreRequest{Key: "small"}, []byte("small and inline"))
	blob, err := e.store.Get(ctx, blobKey(md.Ref.VersionID))
	if err != nil {
		t.Fatal(err)
	}
	var b kv.Batch
	b.Set(blobKey(md.Ref.VersionID), append(bytes.Clone(blob[:len(blob)-1]), blob[len(blob)-1]^1))
	if err := e.store.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Retrieve(ctx, alice, md.Ref)
	wantErr(t, "tampered inline envelope", err, ErrDecryptionFailed)
}

// The envelope is bound to its owner's identity key: a record rewritten to
// name another owner does not make the data readable by that owner.
func TestRecordRewrittenToAnotherOwner(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice", "mallory")
	ctx := context.Background()
	md := e.put(alice, StoreRequest{Key: "k"}, []byte("alice only"))
	rec := e.record(md.Ref)
	var b kv.Batch
	b.Delete(ownerKey(rec))
	if err := e.store.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	rec.Owner = "mallory"
	e.putRecord(rec)
	_, err := e.s.Retrieve(ctx, Caller{Agent: "mallory"}, md.Ref)
	if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrDecryptionFailed) && !errors.Is(err, nhi.ErrUnwrapFailed) {
		t.Fatalf("mallory read alice's object through a rewritten record: %v", err)
	}
}
