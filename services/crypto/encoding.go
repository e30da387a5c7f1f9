package crypto

import (
	"encoding/binary"
	"fmt"
)

// Every key, signature and ciphertext this package emits starts with the
// same four-byte header:
//
//	byte 0     encoding version (1)
//	byte 1     object type (public key, private key, ...)
//	bytes 2-3  Algorithm, big-endian
//
// followed by the algorithm's raw bytes, whose length is fixed per algorithm
// and object type (only AEAD ciphertexts vary, by plaintext length). The
// object type stops a public key being read as a signature or a private key
// as a symmetric key; the algorithm stops a signature or ciphertext being
// checked under a different scheme than it was made with.
const (
	encodingVersion = 1
	headerSize      = 4
)

// objectType is byte 1 of the header.
type objectType byte

const (
	objPublicKey     objectType = 1
	objPrivateKey    objectType = 2
	objSymmetricKey  objectType = 3
	objSignature     objectType = 4
	objKEMCiphertext objectType = 5
	objAEADMessage   objectType = 6
)

var objectNames = map[objectType]string{
	objPublicKey:     "public key",
	objPrivateKey:    "private key",
	objSymmetricKey:  "symmetric key",
	objSignature:     "signature",
	objKEMCiphertext: "kem ciphertext",
	objAEADMessage:   "aead ciphertext",
}

func (t objectType) String() string {
	if n, ok := objectNames[t]; ok {
		return n
	}
	return fmt.Sprintf("object(%d)", byte(t))
}

// newEncoding allocates header || body (body left zero, bodyLen long) with
// spare capacity extra, so callers write the body in place with no copy.
func newEncoding(t objectType, alg Algorithm, bodyLen, extra int) []byte {
	b := make([]byte, headerSize+bodyLen, headerSize+bodyLen+extra)
	b[0] = encodingVersion
	b[1] = byte(t)
	binary.BigEndian.PutUint16(b[2:4], uint16(alg))
	return b
}

// encode returns header || body.
func encode(t objectType, alg Algorithm, body []byte) []byte {
	b := newEncoding(t, alg, len(body), 0)
	copy(b[headerSize:], body)
	return b
}

// decode checks the header of b and returns the algorithm it names and the
// body. It checks version, type and that the algorithm is supported; the
// kind and body length are for the caller to check, since only it knows
// which kinds it accepts and the exact size.
func decode(b []byte, t objectType) (Algorithm, []byte, error) {
	if len(b) < headerSize {
		return 0, nil, detailError(ErrMalformed, "%v: %d bytes, shorter than the %d-byte header", t, len(b), headerSize)
	}
	if b[0] != encodingVersion {
		return 0, nil, detailError(ErrMalformed, "%v: unsupported encoding version %d", t, b[0])
	}
	if got := objectType(b[1]); got != t {
		return 0, nil, detailError(ErrMalformed, "got a %v where a %v was expected", got, t)
	}
	alg := Algorithm(binary.BigEndian.Uint16(b[2:4]))
	if !alg.Supported() {
		return 0, nil, detailError(ErrUnsupportedAlgorithm, "%v for %v", alg, t)
	}
	return alg, b[headerSize:], nil
}

// exactLength is the length check every fixed-size body gets.
func exactLength(t objectType, alg Algorithm, body []byte, want int) error {
	if len(body) != want {
		return detailError(ErrMalformed, "%v %v: %d bytes, want %d", alg, t, len(body), want)
	}
	return nil
}
