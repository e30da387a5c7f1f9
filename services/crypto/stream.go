package crypto

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
)

// Segmented (streaming) AEAD: one long plaintext encrypted as a sequence of
// segments, each an ordinary AEAD message, so data far larger than memory
// is encrypted and authenticated in constant memory. It is the STREAM
// construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
// Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", 2015) in
// the form Tink's AES-GCM-HKDF streaming AEAD uses:
//
//	segment key   = HKDF-SHA256(ikm = key, salt = salt, info = info), key-sized
//	nonce of i    = noncePrefix (7 bytes) ‖ uint32be(i) ‖ final (1 byte, 0 or 1)
//	segment i     = AEAD.Seal(segment key, nonce of i, plaintext i, no aad)
//
// The counter in the nonce fixes each segment's position, so reordered,
// dropped or duplicated segments fail to open; the final flag marks the
// last segment, so a stream cut at a segment boundary (its new last segment
// was sealed as not final) or extended past its end (a segment after the
// final one) fails too. The segment key depends on salt and info, so a
// segment moved from another stream — another key, salt or info — fails as
// well: callers bind a stream to its context (a file header, an object id)
// by passing that context as info. Counters are kept inside the sealer and
// opener, never by the caller, so a nonce cannot be repeated under one
// segment key short of reusing key, salt and info together.
//
// Segment boundaries are the caller's framing: a sealed segment is exactly
// StreamOverhead bytes longer than its plaintext.
const (
	// StreamSaltSize is the size of the salt, which should be random per
	// stream: it keeps segment keys apart even if a key were reused.
	StreamSaltSize = 32
	// StreamNoncePrefixSize is the size of the nonce prefix, random per
	// stream.
	StreamNoncePrefixSize = 7
	// StreamOverhead is what each segment adds: the AEAD tag.
	StreamOverhead = 16
)

// maxStreamSegments is the counter's range.
const maxStreamSegments = math.MaxUint32 + 1

// streamState is what a sealer and an opener share: the segment AEAD, the
// nonce under construction and the position.
type streamState struct {
	alg   Algorithm
	aead  cipher.AEAD
	nonce [12]byte
	next  uint64 // index of the next segment
	ended bool   // no segment may follow: the final one was sealed, or one failed to open
}

func newStreamState(op string, key *SymmetricKey, salt, noncePrefix, info []byte) (*streamState, error) {
	if err := key.usable(op); err != nil {
		return nil, err
	}
	s := key.scheme
	switch {
	case s.nonceSize != 12 || s.overhead != StreamOverhead:
		// Both AEADs fit; a future one with another nonce layout must not
		// slip through with a truncated counter.
		return nil, opError(op, key.alg, detailError(ErrUnsupportedAlgorithm, "nonce or tag size unsuited to the stream layout"))
	case len(salt) != StreamSaltSize:
		return nil, opError(op, key.alg, detailError(ErrMalformed, "salt is %d bytes, want %d", len(salt), StreamSaltSize))
	case len(noncePrefix) != StreamNoncePrefixSize:
		return nil, opError(op, key.alg, detailError(ErrMalformed, "nonce prefix is %d bytes, want %d", len(noncePrefix), StreamNoncePrefixSize))
	case len(info) > maxHPKEInfo:
		return nil, opError(op, key.alg, detailError(ErrMalformed, "info over %d bytes", maxHPKEInfo))
	}
	derived, err := hkdf.Key(sha256.New, key.key, salt, string(info), s.keySize)
	if err != nil {
		return nil, opError(op, key.alg, err)
	}
	a, err := s.new(derived)
	clear(derived)
	if err != nil {
		return nil, opError(op, key.alg, detailError(ErrInvalidKey, "%v", err))
	}
	st := &streamState{alg: key.alg, aead: a}
	copy(st.nonce[:], noncePrefix)
	return st, nil
}

// advance sets the nonce for the next segment and moves the counter past
// it, refusing to go on after the final segment or past the counter range.
func (st *streamState) advance(op string, final bool) error {
	switch {
	case st.ended:
		return opError(op, st.alg, detailError(ErrMalformed, "the stream has ended"))
	case st.next >= maxStreamSegments:
		return opError(op, st.alg, detailError(ErrMalformed, "more than %d segments", uint64(maxStreamSegments)))
	}
	binary.BigEndian.PutUint32(st.nonce[StreamNoncePrefixSize:], uint32(st.next))
	st.nonce[11] = 0
	if final {
		st.nonce[11] = 1
	}
	st.next++
	st.ended = final
	return nil
}

// StreamSealer encrypts one stream segment by segment. It is not safe for
// concurrent use: segments are sealed in order.
type StreamSealer struct{ st *streamState }

// NewStreamSealer starts a stream under key (AES-256-GCM or
// ChaCha20-Poly1305). salt (StreamSaltSize bytes) and noncePrefix
// (StreamNoncePrefixSize bytes) should be fresh random values stored with
// the stream; info binds the stream to its context and is not stored.
func NewStreamSealer(key *SymmetricKey, salt, noncePrefix, info []byte) (*StreamSealer, error) {
	st, err := newStreamState("new stream sealer", key, salt, noncePrefix, info)
	if err != nil {
		return nil, err
	}
	return &StreamSealer{st}, nil
}

// Seal appends the next segment, sealed, to dst and returns the result.
// final marks the last segment: a stream must end with exactly one final
// segment (an empty one for an empty stream), after which Seal fails. To
// seal in place pass plaintext[:0] as dst, with StreamOverhead spare
// capacity.
func (s *StreamSealer) Seal(dst, plaintext []byte, final bool) ([]byte, error) {
	const op = "stream seal"
	if len(plaintext) > maxPlaintext {
		return nil, opError(op, s.st.alg, detailError(ErrMalformed, "segment over %d bytes", maxPlaintext))
	}
	if err := s.st.advance(op, final); err != nil {
		return nil, err
	}
	return s.st.aead.Seal(dst, s.st.nonce[:], plaintext, nil), nil
}

// Segments returns how many segments have been sealed.
func (s *StreamSealer) Segments() uint64 { return s.st.next }

// StreamOpener decrypts one stream segment by segment, in order. It is not
// safe for concurrent use.
type StreamOpener struct {
	st       *streamState
	finished bool
}

// NewStreamOpener starts reading a stream sealed by a StreamSealer made
// with the same key, salt, nonce prefix and info.
func NewStreamOpener(key *SymmetricKey, salt, noncePrefix, info []byte) (*StreamOpener, error) {
	st, err := newStreamState("new stream opener", key, salt, noncePrefix, info)
	if err != nil {
		return nil, err
	}
	return &StreamOpener{st: st}, nil
}

// Open authenticates and decrypts the next segment, appending the plaintext
// to dst; pass ciphertext[:0] to open in place. final says whether the
// caller's framing found this to be the last segment; it must agree with
// what the sealer said. Any failure matches ErrAuthentication and ends the
// stream: a segment that does not open means the stream was tampered with,
// reordered, truncated, extended or spliced, and nothing after it can be
// trusted. At the end of the input, Finished tells a complete stream from a
// truncated one.
func (o *StreamOpener) Open(dst, ciphertext []byte, final bool) ([]byte, error) {
	const op = "stream open"
	if len(ciphertext) < StreamOverhead {
		o.st.ended = true
		return nil, opError(op, o.st.alg, ErrAuthentication, detailError(ErrMalformed, "segment of %d bytes, shorter than the tag", len(ciphertext)))
	}
	if err := o.st.advance(op, final); err != nil {
		return nil, opError(op, o.st.alg, ErrAuthentication, err)
	}
	pt, err := o.st.aead.Open(dst, o.st.nonce[:], ciphertext, nil)
	if err != nil {
		o.st.ended = true
		o.st.next-- // the failed segment was not opened
		return nil, opError(op, o.st.alg, ErrAuthentication, fmt.Errorf("segment %d", o.st.next))
	}
	o.finished = final
	return pt, nil
}

// Segments returns how many segments have been opened.
func (o *StreamOpener) Segments() uint64 { return o.st.next }

// Finished reports whether the final segment has been opened. A reader that
// reaches the end of its input before that has a truncated stream.
func (o *StreamOpener) Finished() bool { return o.finished }
