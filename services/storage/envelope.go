package storage

import (
	"encoding/binary"
	"fmt"

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
	b = append(b, envelopeMagic...)
	b = append(b, envelopeVersion, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(h.aead))
	b = binary.BigEndian.AppendUint16(b, uint16(h.kem))
	b = binary.BigEndian.AppendUint16(b, h.hpkeKEM)
	b = binary.BigEndian.AppendUint16(b, h.hpkeKDF)
	b = binary.BigEndian.AppendUint16(b, h.hpkeAEAD)
	b = binary.BigEndian.AppendUint32(b, h.segmentSize)
	b = binary.BigEndian.AppendUint32(b, h.keyVersion)
	b = append(b, h.salt[:]...)
	b = append(b, h.noncePrefix[:]...)
	b = append(append(b, byte(len(h.owner))), h.owner...)
	b = append(append(b, byte(len(h.bucket))), h.bucket...)
	b = append(binary.BigEndian.AppendUint16(b, uint16(len(h.key))), h.key...)
	b = append(append(b, byte(len(h.vid))), h.vid...)
	return b
}

// encode returns the whole header.
func (h *header) encode() []byte {
	b := h.appendUnwrapped(make([]byte, 0, fixedHeaderSize+len(h.owner)+len(h.bucket)+len(h.key)+len(h.vid)+len(h.wrapped)+7))
	return append(binary.BigEndian.AppendUint16(b, uint16(len(h.wrapped))), h.wrapped...)
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
	r := reader{b: b}
	if string(r.take(4)) != envelopeMagic {
		return nil, 0, corrupt("not an object envelope")
	}
	if v := r.u8(); r.err == nil && v != envelopeVersion {
		return nil, 0, corrupt("envelope format version %d, this build reads %d", v, envelopeVersion)
	}
	if f := r.u8(); r.err == nil && f != 0 {
		return nil, 0, corrupt("unknown envelope flags %#x", f)
	}
	h := &header{
		aead:        crypto.Algorithm(r.u16()),
		kem:         crypto.Algorithm(r.u16()),
		hpkeKEM:     r.u16(),
		hpkeKDF:     r.u16(),
		hpkeAEAD:    r.u16(),
		segmentSize: r.u32(),
		keyVersion:  r.u32(),
	}
	copy(h.salt[:], r.take(len(h.salt)))
	copy(h.noncePrefix[:], r.take(len(h.noncePrefix)))
	h.owner = string(r.bytes(r.u8()))
	h.bucket = string(r.bytes(r.u8()))
	h.key = string(r.bytes(int(r.u16())))
	h.vid = string(r.bytes(r.u8()))
	h.wrapped = r.bytes(int(r.u16()))
	if r.err != nil {
		return nil, 0, corrupt("envelope header: %v", r.err)
	}
	if err := h.validate(); err != nil {
		return nil, 0, err
	}
	return h, r.off, nil
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

// reader decodes big-endian fields, remembering the first error so a
// decoder reads straight through and checks once.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b)-r.off {
		r.err = fmt.Errorf("truncated at byte %d", r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

// bytes returns a copy, so the header does not pin the buffer it came from.
func (r *reader) bytes(n int) []byte { return append([]byte(nil), r.take(n)...) }

func (r *reader) u8() int {
	if p := r.take(1); p != nil {
		return int(p[0])
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}
