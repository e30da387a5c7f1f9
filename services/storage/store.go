package storage

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// maxTTL keeps expiry times far from overflowing.
const maxTTL = 100 * 365 * 24 * time.Hour

// Store reads an object from body and stores it as a new version of
// (req.Bucket, req.Key), encrypted under a fresh data key wrapped to the
// owner's KEM key. It streams: memory stays at two chunks whatever the
// object's size, and quota is reserved chunk by chunk as the body arrives,
// so concurrent writers cannot together pass an owner's quota. Nothing is
// visible until the whole object is durable: the envelope is fsync'd
// first, then one atomic commit records the version. On any error —
// a bad request, a refused access, TooLarge, QuotaExceeded, a body that
// fails, a cancelled context — nothing is stored and nothing is reserved.
//
// The caller must be the owner or hold a storage:write delegation from it.
func (s *Service) Store(ctx context.Context, caller Caller, req StoreRequest, body io.Reader) (ObjectMetadata, error) {
	if err := s.enter(); err != nil {
		return ObjectMetadata{}, fmt.Errorf("storage: store: %w", err)
	}
	defer s.life.RUnlock()
	rec, err := s.storeObject(ctx, caller, req, body)
	if err != nil {
		return ObjectMetadata{}, fmt.Errorf("storage: store %s/%s: %w", quote(req.Bucket), quote(req.Key), err)
	}
	return rec.metadata(), nil
}

// storeOp is one store in progress.
type storeOp struct {
	s        *Service
	caller   Caller
	rec      *record
	aead     crypto.Algorithm
	declared int64
	reserved int64 // bytes reserved against the owner's quota so far
}

func (s *Service) storeObject(ctx context.Context, caller Caller, req StoreRequest, body io.Reader) (*record, error) {
	if body == nil {
		return nil, invalid("no body")
	}
	op, err := s.planStore(ctx, caller, req)
	if err != nil {
		return nil, err
	}
	if err := s.acquireStream(ctx); err != nil {
		return nil, err
	}
	defer s.releaseStream()
	defer func() { s.quota.release(op.rec.Owner, op.reserved) }()
	sealer, header, err := op.seal(ctx)
	if err != nil {
		return nil, err
	}
	w := &envelopeWriter{path: s.filePath(op.rec.VersionID), inlineMax: s.cfg.InlineMaxBytes}
	if err := op.write(ctx, w, header, sealer, body); err != nil {
		w.abort()
		return nil, err
	}
	if err := op.commit(ctx, w); err != nil {
		w.abort()
		return nil, err
	}
	return op.rec, nil
}

// planStore validates the request and access and fixes the version's
// record, before any key or byte is touched.
func (s *Service) planStore(ctx context.Context, caller Caller, req StoreRequest) (*storeOp, error) {
	if err := validateAgent("caller", caller.Agent); err != nil {
		return nil, err
	}
	nowMS := s.now().UnixMilli()
	rec := &record{
		Bucket:         req.Bucket,
		Key:            req.Key,
		Owner:          req.Owner,
		Classification: req.Classification,
		ContentType:    req.ContentType,
		Metadata:       cloneMetadata(req.Metadata),
		SegmentSize:    s.cfg.ChunkSizeBytes,
	}
	if rec.Bucket == "" {
		rec.Bucket = s.cfg.DefaultBucket
	}
	if err := validateBucket(rec.Bucket); err != nil {
		return nil, err
	}
	rec.VersionID = s.newVersionID()
	rec.CreatedAt = versionTime(rec.VersionID) / int64(time.Millisecond)
	if rec.Key == "" {
		rec.Key = rec.VersionID
	}
	if err := validateKey(rec.Key); err != nil {
		return nil, err
	}
	if !rec.Classification.valid() {
		return nil, invalid("classification %v is not one of agent_data … compliance", rec.Classification)
	}
	if err := validateContentType(rec.ContentType); err != nil {
		return nil, err
	}
	if err := validateMetadata(rec.Metadata); err != nil {
		return nil, err
	}
	aead, err := s.encryption(req.Encryption)
	if err != nil {
		return nil, err
	}
	ttl := req.TTL
	if ttl == 0 && rec.Classification != Compliance {
		ttl = s.cfg.defaultTTL()
	}
	if err := s.setLifetime(rec, ttl, rec.Classification == Compliance, nowMS); err != nil {
		return nil, err
	}
	switch {
	case req.Size < 0:
		return nil, invalid("negative size %d", req.Size)
	case req.Size > s.cfg.MaxObjectSizeBytes:
		return nil, &TooLargeError{Size: req.Size, Max: s.cfg.MaxObjectSizeBytes}
	}

	if rec.Owner, err = s.writer(ctx, caller, rec.Bucket, rec.Key, rec.Owner); err != nil {
		return nil, err
	}
	if req.Size > 0 {
		if err := s.quota.check(rec.Owner, req.Size); err != nil {
			return nil, err
		}
	}
	return &storeOp{s: s, caller: caller, rec: rec, aead: aead, declared: req.Size}, nil
}

// writer decides who owns a version stored to (bucket, key) — the
// object's owner if it exists (a requested owner must match it), else the
// requested owner, else the caller — and checks that caller may write it.
func (s *Service) writer(ctx context.Context, caller Caller, bucket, key, requested string) (string, error) {
	owner, found, err := s.currentOwner(ctx, bucket, key)
	switch {
	case err != nil:
		return "", err
	case found && requested != "" && requested != owner:
		return "", invalid("the object has another owner, which a new version keeps")
	case !found && requested != "":
		owner = requested
	case !found:
		owner = caller.Agent
	}
	if err := validateAgent("owner", owner); err != nil {
		return "", err
	}
	if err := s.authorize(ctx, caller, owner, StorageRef{Bucket: bucket, Key: key}, PermWrite); err != nil {
		return "", err
	}
	return owner, nil
}

// encryption applies a request's EncryptionConfig to the configured
// algorithms and returns the data AEAD.
func (s *Service) encryption(c *EncryptionConfig) (crypto.Algorithm, error) {
	if c == nil {
		return s.cfg.aead, nil
	}
	aead := s.cfg.aead
	if c.Algorithm != "" {
		a, err := crypto.ParseAlgorithm(c.Algorithm)
		if err != nil || (a != crypto.AES256GCM && a != crypto.ChaCha20Poly1305) {
			return 0, invalid("encryption algorithm %s is not aes-256-gcm or chacha20-poly1305", quote(c.Algorithm))
		}
		aead = a
	}
	if c.KeyWrapAlgorithm != "" {
		if a, err := crypto.ParseAlgorithm(c.KeyWrapAlgorithm); err != nil || a != s.cfg.kem {
			return 0, invalid("key wrap %s: data keys are wrapped to the owner's %v key", quote(c.KeyWrapAlgorithm), s.cfg.kem)
		}
	}
	if c.CustomerKeyID != "" {
		return 0, invalid("customer-managed keys are not supported: data keys are wrapped to the owner's identity key")
	}
	return aead, nil
}

// setLifetime applies a TTL to rec — zero keeps its expiry, NoExpiry
// removes it — and, when startRetention, starts compliance retention now.
// While a version is retained its expiry may not come before the
// retention ends: that would delete it early.
func (s *Service) setLifetime(rec *record, ttl time.Duration, startRetention bool, nowMS int64) error {
	switch {
	case ttl == NoExpiry:
		rec.ExpiresAt = 0
	case ttl < 0:
		return invalid("negative TTL %v", ttl)
	case ttl > maxTTL:
		return invalid("TTL %v over %v", ttl, maxTTL)
	case ttl > 0:
		rec.ExpiresAt = nowMS + ttl.Milliseconds()
	}
	if startRetention {
		rec.RetainUntil = max(rec.RetainUntil, nowMS+s.cfg.retention().Milliseconds())
	}
	if rec.retainedAt(nowMS) && rec.ExpiresAt != 0 && rec.ExpiresAt < rec.RetainUntil {
		return fmt.Errorf("an expiry before the retention ends would delete the version early: %w", rec.retainedError())
	}
	return nil
}

// currentOwner returns the owner of the object's versions, if it has any.
func (s *Service) currentOwner(ctx context.Context, bucket, key string) (string, bool, error) {
	var owner string
	err := s.store.Scan(ctx, objectPrefix(bucket, key), func(k, v []byte) error {
		r, err := decodeRecord(k, v)
		if err != nil {
			return err
		}
		owner = r.Owner
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return "", false, err
	}
	return owner, owner != "", nil
}

// errStop ends a Scan early.
var errStop = errors.New("stop")

// ownerKey returns the owner's current KEM key, which a store wraps the
// data key to; a presigned PUT checks it when issued, so that a URL for an
// owner who cannot receive objects is refused then, not when used.
func (s *Service) ownerKey(ctx context.Context, owner string) (uint32, *crypto.PublicKey, error) {
	version, pub, err := s.ids.KEMPublicKey(ctx, owner)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: the owner %s has no usable key: %w", ErrEncryptionFailed, quote(owner), err)
	}
	if pub.Algorithm() != s.cfg.kem {
		return 0, nil, fmt.Errorf("%w: the owner's key is %v, the configured key wrap is %v", ErrEncryptionFailed, pub.Algorithm(), s.cfg.kem)
	}
	return version, pub, nil
}

// seal makes the version's data key, wraps it to the owner's current KEM
// key and returns the stream sealer and the encoded envelope header.
func (op *storeOp) seal(ctx context.Context) (*crypto.StreamSealer, []byte, error) {
	s, rec := op.s, op.rec
	version, pub, err := s.ownerKey(ctx, rec.Owner)
	if err != nil {
		return nil, nil, err
	}
	h := &header{aead: op.aead, kem: pub.Algorithm(), segmentSize: uint32(rec.SegmentSize), keyVersion: version,
		owner: rec.Owner, bucket: rec.Bucket, key: rec.Key, vid: rec.VersionID}
	if h.hpkeKEM, h.hpkeKDF, h.hpkeAEAD, err = crypto.HPKESuiteIDs(h.kem, wrapAEAD); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrEncryptionFailed, err)
	}
	random, err := s.p.RandomBytes(dekSize + len(h.salt) + len(h.noncePrefix))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrEncryptionFailed, err)
	}
	defer clear(random)
	raw := random[:dekSize]
	copy(h.salt[:], random[dekSize:])
	copy(h.noncePrefix[:], random[dekSize+len(h.salt):])
	if h.wrapped, err = crypto.HPKESeal(pub, wrapAEAD, h.dekInfo(), nil, raw); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrEncryptionFailed, err)
	}
	dek, err := crypto.NewSymmetricKey(op.aead, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrEncryptionFailed, err)
	}
	defer dek.Destroy()
	enc := h.encode()
	sealer, err := crypto.NewStreamSealer(dek, h.salt[:], h.noncePrefix[:], streamInfo(enc))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrEncryptionFailed, err)
	}
	return sealer, enc, nil
}

// write streams the body through the sealer into w. It reads one chunk
// ahead: a chunk is sealed as final only once the next read finds the end,
// so the stream's last segment is always flagged, without knowing the
// length in advance.
func (op *storeOp) write(ctx context.Context, w *envelopeWriter, header []byte, sealer *crypto.StreamSealer, body io.Reader) error {
	s, rec := op.s, op.rec
	hasher, err := s.contentHasher(rec.Owner)
	if err != nil {
		return err
	}
	if err := w.write(header); err != nil {
		return err
	}
	bufA, bufB := s.getBuf(), s.getBuf()
	defer s.putBuf(bufA)
	defer s.putBuf(bufB)
	cur, next := *bufA, *bufB
	n, eof, err := op.read(ctx, body, cur, hasher)
	if err != nil {
		return err
	}
	for !eof {
		m, nextEOF, err := op.read(ctx, body, next, hasher)
		if err != nil {
			return err
		}
		if m == 0 {
			break // the body ended exactly at a chunk boundary
		}
		if err := op.sealTo(w, sealer, cur[:n], false); err != nil {
			return err
		}
		cur, next, n, eof = next, cur, m, nextEOF
	}
	if err := op.sealTo(w, sealer, cur[:n], true); err != nil {
		return err
	}
	if op.declared > 0 && rec.Size != op.declared {
		return invalid("the body is %d bytes, %d were declared", rec.Size, op.declared)
	}
	rec.Segments = int64(sealer.Segments())
	rec.EnvelopeSize = w.size
	rec.ContentHash = hasher.Sum(nil)
	return w.finish()
}

// read fills p from the body and accounts for what it got: size limits,
// quota, the content hash. eof reports that the body has ended.
func (op *storeOp) read(ctx context.Context, body io.Reader, p []byte, h hash.Hash) (n int, eof bool, err error) {
	select {
	case <-op.s.closing:
		return 0, false, ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	n, err = io.ReadFull(body, p[:op.s.cfg.ChunkSizeBytes])
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		eof = true
	case err != nil:
		return 0, false, fmt.Errorf("reading the body: %w", err)
	}
	rec := op.rec
	rec.Size += int64(n)
	switch {
	case rec.Size > op.s.cfg.MaxObjectSizeBytes:
		return 0, false, &TooLargeError{Size: rec.Size, Max: op.s.cfg.MaxObjectSizeBytes}
	case op.declared > 0 && rec.Size > op.declared:
		return 0, false, invalid("the body is longer than the %d bytes declared", op.declared)
	}
	if err := op.s.quota.reserve(rec.Owner, int64(n)); err != nil {
		return 0, false, err
	}
	op.reserved += int64(n)
	h.Write(p[:n])
	return n, eof, nil
}

// sealTo seals a chunk in place (its buffer has room for the tag) and
// appends it to the envelope.
func (op *storeOp) sealTo(w *envelopeWriter, sealer *crypto.StreamSealer, chunk []byte, final bool) error {
	ct, err := sealer.Seal(chunk[:0], chunk, final)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEncryptionFailed, err)
	}
	return w.write(ct)
}

// commit records the version in one atomic write, after re-checking under
// the object's lock that no store of another owner's version committed in
// the meantime.
func (op *storeOp) commit(ctx context.Context, w *envelopeWriter) error {
	s, rec := op.s, op.rec
	l := s.lock(rec.Bucket, rec.Key)
	l.Lock()
	defer l.Unlock()
	owner, found, err := s.currentOwner(ctx, rec.Bucket, rec.Key)
	if err != nil {
		return err
	}
	if found && owner != rec.Owner {
		return &AccessDeniedError{Agent: op.caller.Agent, Ref: rec.ref(), Permission: PermWrite,
			Cause: fmt.Errorf("the object was created by %s while this version was being stored", quote(owner))}
	}
	rec.Inline = w.file == nil
	var b kv.Batch
	putRecord(&b, rec)
	if rec.Inline {
		b.Set(blobKey(rec.VersionID), w.inline)
	}
	if err := s.store.Apply(ctx, &b); err != nil {
		return err
	}
	s.quota.commit(rec.Owner, rec.Size)
	op.reserved -= rec.Size
	return nil
}

// envelopeWriter collects an envelope in memory while it stays within
// inlineMax, and moves it to a new file at path once it grows past that.
type envelopeWriter struct {
	path      string
	inlineMax int
	inline    []byte
	file      *os.File
	size      int64
}

func (w *envelopeWriter) write(p []byte) error {
	w.size += int64(len(p))
	if w.file == nil {
		if w.size <= int64(w.inlineMax) {
			w.inline = append(w.inline, p...)
			return nil
		}
		// O_EXCL: version ids are unique, so an existing file is a bug,
		// never something to overwrite.
		f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		w.file = f
		if _, err := f.Write(w.inline); err != nil {
			return err
		}
		w.inline = nil
	}
	_, err := w.file.Write(p)
	return err
}

// finish makes a file envelope durable: its data, then its directory
// entry, so that once the record commits the file survives a crash.
func (w *envelopeWriter) finish() error {
	if w.file == nil {
		return nil
	}
	if err := w.file.Sync(); err != nil {
		return err
	}
	if err := w.file.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(w.path))
}

// abort removes a file envelope that will not be committed. A crash
// before this runs leaves the file for Open to delete.
func (w *envelopeWriter) abort() {
	if w.file != nil {
		w.file.Close()
		os.Remove(w.path)
	}
}
