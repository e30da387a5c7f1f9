package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/creto-systems/creto/services/crypto"
	"github.com/creto-systems/creto/services/nhi"
)

var alice = Caller{Agent: "alice"}

// Every size around the inline threshold and the chunk boundaries round
// trips through Retrieve and RetrieveStream, with the metadata it was
// stored with, in the place its size calls for.
func TestStoreRetrieveRoundTrip(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	chunk := minChunkSize
	sizes := []int{0, 1, 4 << 10, 8<<10 - 2000, 8 << 10, chunk - 1, chunk, chunk + 1, 3*chunk + 5}
	for i, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := payload(size, uint64(i))
			req := StoreRequest{Bucket: "rt", Key: fmt.Sprintf("obj-%d", size), Classification: Artifact,
				ContentType: "application/x-test", Metadata: map[string]string{"run": "1"}}
			md := e.put(alice, req, data)
			if md.SizeBytes != int64(size) || md.Owner != "alice" || md.Classification != Artifact ||
				md.ContentType != "application/x-test" || md.CustomMetadata["run"] != "1" || len(md.ContentHash) != 32 {
				t.Fatalf("metadata %+v", md)
			}
			if got := e.get(alice, md.Ref); !bytes.Equal(got, data) {
				t.Fatal("Retrieve returned other bytes")
			}
			r, err := e.s.RetrieveStream(context.Background(), alice, StorageRef{Bucket: "rt", Key: req.Key})
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("RetrieveStream: %v", err)
			}
			rec := e.record(md.Ref)
			wantSegments := max(1, (size+chunk-1)/chunk)
			if rec.Segments != int64(wantSegments) {
				t.Fatalf("%d segments, want %d", rec.Segments, wantSegments)
			}
			_, err = os.Stat(e.fileOf(md.Ref))
			if rec.Inline != (rec.EnvelopeSize <= int64(e.cfg.InlineMaxBytes)) || rec.Inline == (err == nil) {
				t.Fatalf("inline %v for a %d-byte envelope (file: %v)", rec.Inline, rec.EnvelopeSize, err)
			}
		})
	}
	e.restart()
	for _, size := range sizes {
		obj, err := e.s.Retrieve(context.Background(), alice, StorageRef{Bucket: "rt", Key: fmt.Sprintf("obj-%d", size)})
		if err != nil || len(obj.Data) != size {
			t.Fatalf("after restart, %d bytes: %v", size, err)
		}
	}
}

// The plaintext appears nowhere at rest, and two stores of the same bytes
// share nothing but their length: each version has its own data key.
func TestEncryptedAtRest(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	secret := bytes.Repeat([]byte("TOP-SECRET-PAYLOAD "), 200) // inline
	large := bytes.Repeat([]byte("TOP-SECRET-PAYLOAD "), 10000)
	a := e.put(alice, StoreRequest{Key: "a"}, secret)
	b := e.put(alice, StoreRequest{Key: "b"}, secret)
	c := e.put(alice, StoreRequest{Key: "c"}, large)
	if !bytes.Equal(a.ContentHash, b.ContentHash) {
		t.Fatal("one owner's equal contents have different hashes")
	}
	blobA, _ := e.store.Get(context.Background(), blobKey(a.Ref.VersionID))
	blobB, _ := e.store.Get(context.Background(), blobKey(b.Ref.VersionID))
	file, err := os.ReadFile(e.fileOf(c.Ref))
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range [][]byte{blobA, blobB, file} {
		if bytes.Contains(at, []byte("TOP-SECRET")) {
			t.Fatal("plaintext stored")
		}
	}
	ha, na, _ := decodeHeader(blobA)
	hb, nb, _ := decodeHeader(blobB)
	if bytes.Equal(blobA[na:], blobB[nb:]) || bytes.Equal(ha.wrapped, hb.wrapped) || ha.salt == hb.salt {
		t.Fatal("two versions share a ciphertext, wrapped key or salt")
	}
	if ha.kem != crypto.XWing || ha.aead != crypto.AES256GCM || ha.keyVersion != 1 || ha.owner != "alice" {
		t.Fatalf("header %+v", ha)
	}
	if wrapAEAD != nhi.WrapAEAD {
		t.Fatal("storage and NHI disagree on the wrap AEAD")
	}
}

// The same file stored by two owners gets unrelated content hashes: the
// hash is keyed per owner from the node secret.
func TestContentHashKeyedPerOwner(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice", "bob")
	data := []byte("the same file")
	a := e.put(alice, StoreRequest{Key: "a"}, data)
	b := e.put(Caller{Agent: "bob"}, StoreRequest{Key: "b"}, data)
	plain, _ := crypto.New().Hash(crypto.BLAKE3, data)
	if bytes.Equal(a.ContentHash, b.ContentHash) || bytes.Equal(a.ContentHash, plain) {
		t.Fatal("content hashes are comparable across owners or with a plain BLAKE3")
	}
	e.restart()
	again := e.put(alice, StoreRequest{Key: "a2"}, data)
	if !bytes.Equal(again.ContentHash, a.ContentHash) {
		t.Fatal("the content hash key changed across a restart")
	}
}

func TestVersions(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	v1 := e.put(alice, StoreRequest{Bucket: "b", Key: "k"}, []byte("one"))
	v2 := e.put(alice, StoreRequest{Bucket: "b", Key: "k"}, []byte("two"))
	if v1.Ref.VersionID >= v2.Ref.VersionID {
		t.Fatal("version ids do not increase")
	}
	latest := StorageRef{Bucket: "b", Key: "k"}
	if got := e.get(alice, latest); string(got) != "two" {
		t.Fatalf("latest is %q", got)
	}
	if got := e.get(alice, v1.Ref); string(got) != "one" {
		t.Fatalf("v1 is %q", got)
	}
	list, err := e.s.List(ctx, alice, ListRequest{AllVersions: true})
	if err != nil || len(list.Objects) != 2 {
		t.Fatalf("all versions: %v %v", list.Objects, err)
	}
	if err := e.s.Delete(ctx, alice, v2.Ref); err != nil {
		t.Fatal(err)
	}
	if got := e.get(alice, latest); string(got) != "one" {
		t.Fatalf("after deleting v2 the latest is %q", got)
	}
	if err := e.s.Delete(ctx, alice, latest); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Retrieve(ctx, alice, latest)
	wantErr(t, "after delete", err, ErrNotFound)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Ref.Key != "k" {
		t.Fatalf("not a *NotFoundError naming the key: %v", err)
	}
	e.unchanged("after deleting every version", 0, 0)
	if u, _ := e.s.Usage(ctx, alice, "alice"); u.Used != 0 || u.Reserved != 0 {
		t.Fatalf("usage after deletes: %+v", u)
	}
}

// A reference's content hash pins the bytes: any other version, or a
// changed record, is a hash mismatch.
func TestHashMismatch(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	v1 := e.put(alice, StoreRequest{Key: "k"}, []byte("one"))
	e.put(alice, StoreRequest{Key: "k"}, []byte("two"))
	pinned := StorageRef{Bucket: v1.Ref.Bucket, Key: "k", ContentHash: v1.ContentHash}
	_, err := e.s.Retrieve(ctx, alice, pinned)
	wantErr(t, "latest against v1's hash", err, ErrHashMismatch)
	err = e.s.Delete(ctx, alice, pinned)
	wantErr(t, "delete against v1's hash", err, ErrHashMismatch)
	if len(e.get(alice, v1.Ref)) != 3 {
		t.Fatal("v1 changed")
	}

	// A record whose hash no longer matches its envelope: every chunk
	// decrypts, and the stream ends with the mismatch instead of io.EOF,
	// withholding the last chunk.
	big := payload(3*minChunkSize+10, 1)
	md := e.put(alice, StoreRequest{Key: "big"}, big)
	rec := e.record(md.Ref)
	rec.ContentHash[0] ^= 1
	e.putRecord(rec)
	r, err := e.s.RetrieveStream(ctx, alice, StorageRef{Bucket: md.Ref.Bucket, Key: "big"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := readAll(r)
	wantErr(t, "tampered record hash", err, ErrHashMismatch)
	var hm *HashMismatchError
	if !errors.As(err, &hm) || hm.Expected == hm.Actual {
		t.Fatalf("not a *HashMismatchError: %v", err)
	}
	if len(got) != 3*minChunkSize || !bytes.Equal(got, big[:len(got)]) {
		t.Fatalf("read %d bytes before the mismatch, want the first three chunks", len(got))
	}
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Fatal("the reader recovered")
	}
}

// Rotating the owner's keys leaves old versions readable and wraps new
// ones to the new key; revoking the owner makes every version unreadable
// and refuses new ones.
func TestOwnerKeyLifecycle(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	old := e.put(alice, StoreRequest{Key: "old"}, []byte("before rotation"))
	if _, err := e.ids.RotateKeys(ctx, "alice", 0); err != nil {
		t.Fatal(err)
	}
	fresh := e.put(alice, StoreRequest{Key: "new"}, []byte("after rotation"))
	blob, _ := e.store.Get(ctx, blobKey(fresh.Ref.VersionID))
	if h, _, _ := decodeHeader(blob); h.keyVersion != 2 {
		t.Fatalf("new version wrapped to key version %d", h.keyVersion)
	}
	if string(e.get(alice, old.Ref)) != "before rotation" || string(e.get(alice, fresh.Ref)) != "after rotation" {
		t.Fatal("a version does not read back after rotation")
	}
	if err := e.ids.Revoke(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.Retrieve(ctx, alice, old.Ref)
	wantErr(t, "revoked owner", err, ErrDecryptionFailed, nhi.ErrRevoked)
	_, err = e.s.Store(ctx, alice, StoreRequest{Key: "x", Classification: AgentData}, bytes.NewReader([]byte("x")))
	wantErr(t, "store for a revoked owner", err, ErrEncryptionFailed, nhi.ErrRevoked)
	_, err = e.s.Store(ctx, Caller{Agent: "ghost"}, StoreRequest{Key: "x", Classification: AgentData}, bytes.NewReader([]byte("x")))
	wantErr(t, "store for an unknown owner", err, ErrEncryptionFailed, nhi.ErrNotFound)
	e.unchanged("after refused stores", 2, 0)
}

func TestCloseStopsEverything(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	md := e.put(alice, StoreRequest{Key: "k"}, []byte("data"))
	// A store blocked mid-body is stopped by Close and stores nothing.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := e.s.Store(ctx, alice, StoreRequest{Key: "slow", Classification: AgentData}, pr)
		done <- err
	}()
	if _, err := pw.Write(payload(2*minChunkSize, 3)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- e.s.Close() }()
	// Close waits for the store, which notices at its next chunk: once
	// closing has begun, feed it one, unless it noticed already.
	<-e.s.closing
	go pw.Write(payload(minChunkSize, 4))
	wantErr(t, "store during close", <-done, ErrClosed)
	pr.Close()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	_, err := e.s.Retrieve(ctx, alice, md.Ref)
	wantErr(t, "retrieve after close", err, ErrClosed)
	wantErr(t, "second close", e.s.Close(), ErrClosed)
	if n := len(e.files()); n != 0 {
		t.Fatalf("%d files after an interrupted store", n)
	}
	e.ids.Close()
	e.store.Close()
	e.s = nil
}
