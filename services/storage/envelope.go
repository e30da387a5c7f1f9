package storage

import (
	"bytes"

	"github.com/creto-systems/creto/internal/wire"
	"github.com/creto-systems/creto/services/crypto"
)

// The envelope is what is stored for one object version: a header holding
// everything needed to open it, then the data as segments of a
// crypto.StreamSealer stream. docs/storage.md gives the format byte by
// byte; in short (big-endian integers):
//
//	0   4  magic "CRSO"
//	4   1  format version (1)
//	5   1  flags (0; reserved)
//	6   2  data AEAD (crypto.Algorithm id: 0x0101 aes-256-gcm, 0x0102 chacha20-poly1305)
//	8   2  owner's KEM (crypto.Algorithm id: 0x0303 x-wing)
//	10  6  HPKE suite of the wrapped key: kem_id, kdf_id, aead_id (RFC 9180)
//	16  4  segment size: plaintext bytes in every segment but the last
//	20  4  owner's key version the data key is wrapped to
//	24  32 stream salt
//	56  7  stream nonce prefix
//	63  1+n owner agent id; 1+n bucket; 2+n key; 1+n version id
//	    2+n wrapped data key: HPKE enc ‖ ciphertext
//
// followed by the segments: each but the last is segment size + 16 bytes,
// the last (flagged final in its nonce) at least 16. The wrapped key's HPKE
// info is dekLabel ‖ every header byte before its length field, and the
// stream's info is streamLabel ‖ the whole header, so changing any header
// byte makes the key fail to unwrap or the first segment fail to open.
const (
	envelopeMagic   = "CRSO"
	envelopeVersion = 1
	fixedHeaderSize = 63
	maxWrappedKey   = 4096
	// maxHeaderSize is the largest header the format allows.
	maxHeaderSize = fixedHeaderSize + 1 + maxIDLength + 1 + maxBucketLength + 2 + maxKeyLength + 1 + versionIDLength + 2 + maxWrappedKey
	// dekSize is the data key: 256 bits for either AEAD.
	dekSize = 32
)

// wrapAEAD is the HPKE AEAD of the wrapped data key, the one NHI's
// UnwrapKey opens with (nhi.WrapAEAD; a test holds the two equal).
const wrapAEAD = crypto.AES256GCM

// Domain-separation labels of the two keys derived per object.
const (
	dekLabel    = "creto-storage/dek/v1\x00"
	streamLabel = "creto-storage/data/v1\x00"
)

// header is the decoded envelope header.
type header struct {
	aead, kem                  crypto.Algorithm
	hpkeKEM, hpkeKDF, hpkeAEAD uint16
	segmentSize                uint32
	keyVersion                 uint32
	salt                       [crypto.StreamSaltSize]byte
	noncePrefix                [crypto.StreamNoncePrefixSize]byte
	owner, bucket, key, vid    string
	wrapped                    []byte
}

// appendUnwrapped appends every field before the wrapped key: the bytes
// the wrapped key is bound to.
func (h *header) appendUnwrapped(b []byte) []byte {
	e := wire.Encoder(append(b, envelopeMagic...))
	e.U8(envelopeVersion)
	e.U8(0) // flags
	e.U16(uint16(h.aead))
	e.U16(uint16(h.kem))
	e.U16(h.hpkeKEM)
	e.U16(h.hpkeKDF)
	e.U16(h.hpkeAEAD)
	e.U32(h.segmentSize)
	e.U32(h.keyVersion)
	e.Raw(h.salt[:])
	e.Raw(h.noncePrefix[:])
	e.Str8(h.owner)
	e.Str8(h.bucket)
	e.Str16(h.key)
	e.Str8(h.vid)
	return e
}

// encode returns the whole header.
func (h *header) encode() []byte {
	e := wire.Encoder(h.appendUnwrapped(make([]byte, 0, fixedHeaderSize+len(h.owner)+len(h.bucket)+len(h.key)+len(h.vid)+len(h.wrapped)+7)))
	e.Bytes16(h.wrapped)
	return e
}

// dekInfo is the HPKE info of the wrapped key.
func (h *header) dekInfo() []byte { return h.appendUnwrapped([]byte(dekLabel)) }

// streamInfo is the stream's info, given the encoded header.
func streamInfo(encoded []byte) []byte { return append([]byte(streamLabel), encoded...) }

// decodeHeader decodes the header at the start of b, which may continue
// with segments, and returns it with its length. It accepts exactly what
// encode produces for a valid header and nothing else: every length,
// algorithm and identifier is checked, so a hostile file cannot make a
// reader allocate past the format's bounds. Failures match ErrCorrupt.
func decodeHeader(b []byte) (*header, int, error) {
	d := wire.NewDecoder(b)
	if string(d.Take(len(envelopeMagic))) != envelopeMagic {
		return nil, 0, corrupt("not an object envelope")
	}
	if v := d.U8(); d.Err() == nil && v != envelopeVersion {
		return nil, 0, corrupt("envelope format version %d, this build reads %d", v, envelopeVersion)
	}
	if f := d.U8(); d.Err() == nil && f != 0 {
		return nil, 0, corrupt("unknown envelope flags %#x", f)
	}
	h := &header{
		aead:        crypto.Algorithm(d.U16()),
		kem:         crypto.Algorithm(d.U16()),
		hpkeKEM:     d.U16(),
		hpkeKDF:     d.U16(),
		hpkeAEAD:    d.U16(),
		segmentSize: d.U32(),
		keyVersion:  d.U32(),
	}
	copy(h.salt[:], d.Take(len(h.salt)))
	copy(h.noncePrefix[:], d.Take(len(h.noncePrefix)))
	h.owner = d.Str8(maxIDLength)
	h.bucket = d.Str8(maxBucketLength)
	h.key = d.Str16(maxKeyLength)
	h.vid = d.Str8(versionIDLength)
	// A copy, so the header does not pin the buffer it came from.
	h.wrapped = bytes.Clone(d.Bytes16(maxWrappedKey))
	if err := d.Err(); err != nil {
		return nil, 0, corrupt("envelope header: %v", err)
	}
	if err := h.validate(); err != nil {
		return nil, 0, err
	}
	return h, len(b) - d.Len(), nil
}

// validate checks the decoded fields' values.
func (h *header) validate() error {
	if h.aead != crypto.AES256GCM && h.aead != crypto.ChaCha20Poly1305 {
		return corrupt("envelope data AEAD %v", h.aead)
	}
	kem, kdf, aead, err := crypto.HPKESuiteIDs(h.kem, wrapAEAD)
	if err != nil {
		return corrupt("envelope KEM %v", h.kem)
	}
	if h.hpkeKEM != kem || h.hpkeKDF != kdf || h.hpkeAEAD != aead {
		return corrupt("envelope HPKE suite %#04x/%#04x/%#04x, want %#04x/%#04x/%#04x", h.hpkeKEM, h.hpkeKDF, h.hpkeAEAD, kem, kdf, aead)
	}
	if h.segmentSize < minChunkSize || h.segmentSize > maxChunkSize {
		return corrupt("envelope segment size %d outside %d..%d", h.segmentSize, minChunkSize, maxChunkSize)
	}
	if len(h.wrapped) == 0 || len(h.wrapped) > maxWrappedKey {
		return corrupt("envelope wrapped key of %d bytes", len(h.wrapped))
	}
	for _, err := range []error{validateAgent("owner", h.owner), validateBucket(h.bucket), validateKey(h.key), validateVersionID(h.vid)} {
		if err != nil {
			return corrupt("envelope header: %v", err)
		}
	}
	return nil
}
