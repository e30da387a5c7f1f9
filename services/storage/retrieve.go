package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// Retrieve returns a whole object in memory, decrypted and checked against
// its content hash. Use RetrieveStream for objects too large to hold. The
// caller must be the owner or hold a storage:read delegation from it.
func (s *Service) Retrieve(ctx context.Context, caller Caller, ref StorageRef) (*Object, error) {
	r, err := s.RetrieveStream(ctx, caller, ref)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data := bytes.NewBuffer(make([]byte, 0, r.rec.Size))
	if _, err := r.WriteTo(data); err != nil {
		return nil, err
	}
	return &Object{Metadata: r.Metadata(), Data: data.Bytes()}, nil
}

// RetrieveStream opens a version for reading in constant memory: the
// reader decrypts one chunk at a time as it is read. Every chunk is
// authenticated before any of its bytes are returned; the content hash of
// the whole object is checked when the last chunk is read, and a mismatch
// is returned instead of io.EOF (with the last chunk withheld). Act on the
// data only once the reader has returned io.EOF. The reader must be
// closed; it holds one of the service's stream slots until then.
func (s *Service) RetrieveStream(ctx context.Context, caller Caller, ref StorageRef) (*ObjectReader, error) {
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("storage: retrieve: %w", err)
	}
	defer s.life.RUnlock()
	r, err := s.openReader(ctx, caller, ref)
	if err != nil {
		return nil, fmt.Errorf("storage: retrieve %v: %w", ref, err)
	}
	return r, nil
}

func (s *Service) openReader(ctx context.Context, caller Caller, ref StorageRef) (*ObjectReader, error) {
	rec, err := s.readable(ctx, caller, ref)
	if err != nil {
		return nil, err
	}
	if err := s.acquireStream(ctx); err != nil {
		return nil, err
	}
	r := &ObjectReader{s: s, ctx: ctx, rec: rec}
	if err := r.open(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// ObjectReader reads one version's plaintext (see RetrieveStream). It
// implements io.WriterTo, so io.Copy moves each decrypted chunk without an
// extra copy. It is not safe for concurrent use.
type ObjectReader struct {
	s   *Service
	ctx context.Context
	rec *record

	file    *os.File  // the envelope file, nil for an inline version
	src     io.Reader // the segments
	opener  *crypto.StreamOpener
	hasher  hash.Hash
	buf     *[]byte // one segment, from the service's pool
	pending []byte  // plaintext not yet returned
	peek    [1]byte // the byte read past a full segment, to tell if it was the last
	peeked  bool
	size    int64 // plaintext bytes opened so far
	done    bool  // the final segment was opened and the hash matched
	err     error // sticky: once failed, always failed
	closed  bool
}

// open reads and checks the envelope header, has the owner's identity
// service unwrap the data key, and sets up the stream.
func (r *ObjectReader) open() error {
	s, rec := r.s, r.rec
	r.buf = s.getBuf()
	var envelope []byte // the header, or for an inline version everything
	if rec.Inline {
		blob, err := s.store.Get(r.ctx, blobKey(rec.VersionID))
		if err != nil {
			return s.gone(r.ctx, rec, err)
		}
		envelope = blob
	} else {
		f, err := os.Open(s.filePath(rec.VersionID))
		if err != nil {
			return s.gone(r.ctx, rec, err)
		}
		r.file = f
		head := make([]byte, maxHeaderSize)
		n, err := f.ReadAt(head, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		envelope = head[:n]
	}
	h, hlen, err := decodeHeader(envelope)
	if err != nil {
		return err
	}
	if h.owner != rec.Owner || h.bucket != rec.Bucket || h.key != rec.Key || h.vid != rec.VersionID || int(h.segmentSize) != rec.SegmentSize {
		return corrupt("the envelope of %v belongs to another version or owner", rec.ref())
	}
	raw, err := s.ids.UnwrapKey(r.ctx, rec.Owner, h.keyVersion, h.wrapped, h.dekInfo())
	if err != nil {
		return fmt.Errorf("%w: the data key does not unwrap: %w", ErrDecryptionFailed, err)
	}
	defer clear(raw)
	dek, err := crypto.NewSymmetricKey(h.aead, raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecryptionFailed, err)
	}
	defer dek.Destroy()
	if r.opener, err = crypto.NewStreamOpener(dek, h.salt[:], h.noncePrefix[:], streamInfo(envelope[:hlen])); err != nil {
		return fmt.Errorf("%w: %w", ErrDecryptionFailed, err)
	}
	if r.hasher, err = s.contentHasher(rec.Owner); err != nil {
		return err
	}
	if r.file != nil {
		r.src = io.NewSectionReader(r.file, int64(hlen), 1<<62)
	} else {
		r.src = bytes.NewReader(envelope[hlen:])
	}
	return nil
}

// gone explains why a resolved version's envelope could not be read: it
// was deleted since (ErrNotFound), or its envelope is missing (ErrCorrupt).
func (s *Service) gone(ctx context.Context, rec *record, cause error) error {
	if !errors.Is(cause, fs.ErrNotExist) && !errors.Is(cause, kv.ErrNotFound) {
		return cause
	}
	if _, err := s.store.Get(ctx, objectKey(rec.Bucket, rec.Key, rec.VersionID)); errors.Is(err, kv.ErrNotFound) {
		return &NotFoundError{Ref: rec.ref()}
	}
	return corrupt("the envelope of %v is missing", rec.ref())
}

// Metadata returns the version's metadata.
func (r *ObjectReader) Metadata() ObjectMetadata { return r.rec.metadata() }

// Read implements io.Reader.
func (r *ObjectReader) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// WriteTo implements io.WriterTo: it writes each decrypted chunk to w as
// it is opened, and returns the hash or decryption error, if any, after
// writing every chunk before the failing one.
func (r *ObjectReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.pending) == 0 {
			if err := r.next(); err != nil {
				if errors.Is(err, io.EOF) {
					return total, nil
				}
				return total, err
			}
		}
		n, err := w.Write(r.pending)
		total += int64(n)
		r.pending = r.pending[n:]
		if err != nil {
			return total, err
		}
	}
}

// next opens the next segment into pending.
func (r *ObjectReader) next() error {
	switch {
	case r.err != nil:
		return r.err
	case r.closed:
		return fmt.Errorf("storage: read: %w", os.ErrClosed)
	case r.done:
		return io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		return r.fail(err)
	}
	seg := (*r.buf)[:r.rec.SegmentSize+crypto.StreamOverhead]
	k := 0
	if r.peeked {
		seg[0], k, r.peeked = r.peek[0], 1, false
	}
	n, err := io.ReadFull(r.src, seg[k:])
	n += k
	final := false
	switch {
	case err == nil:
		// A full segment is the last one only if nothing follows it.
		switch _, perr := io.ReadFull(r.src, r.peek[:]); {
		case perr == nil:
			r.peeked = true
		case errors.Is(perr, io.EOF):
			final = true
		default:
			return r.fail(perr)
		}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if n == 0 {
			return r.fail(fmt.Errorf("%w: the envelope ends before its final segment", ErrDecryptionFailed))
		}
		final = true
	default:
		return r.fail(err)
	}
	pt, err := r.opener.Open(seg[:0], seg[:n], final)
	if err != nil {
		return r.fail(fmt.Errorf("%w: %w", ErrDecryptionFailed, err))
	}
	r.hasher.Write(pt)
	r.size += int64(len(pt))
	if final {
		if err := r.finish(); err != nil {
			return r.fail(err)
		}
	}
	r.pending = pt
	return nil
}

// finish checks, at the final segment, that the stream agrees with the
// record and that the content hash matches.
func (r *ObjectReader) finish() error {
	if int64(r.opener.Segments()) != r.rec.Segments || r.size != r.rec.Size {
		return corrupt("the envelope holds %d bytes in %d segments, the record says %d in %d", r.size, r.opener.Segments(), r.rec.Size, r.rec.Segments)
	}
	if err := checkHash(r.rec.ContentHash, r.hasher.Sum(nil)); err != nil {
		return err
	}
	r.done = true
	return nil
}

func (r *ObjectReader) fail(err error) error {
	r.err = fmt.Errorf("storage: retrieve %v: %w", r.rec.ref(), err)
	r.pending = nil
	return r.err
}

// Close releases the reader's file, buffer and stream slot. It is safe to
// call more than once.
func (r *ObjectReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.pending = nil
	var err error
	if r.file != nil {
		err = r.file.Close()
	}
	if r.buf != nil {
		r.s.putBuf(r.buf)
		r.buf = nil
	}
	r.s.releaseStream()
	return err
}
