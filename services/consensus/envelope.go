package consensus

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// envelope is what one raft entry carries: a command of a registered type,
// who proposed it, an optional idempotency key with the fingerprint of the
// request it stands for, and the handler's payload. Wire layout (version
// 1):
//
//	0x01 | uvarint len | type | uvarint len | caller | uvarint len | key |
//	uvarint len | fingerprint | payload
//
// The fingerprint is the SHA-256 of what the caller asked for (a command's
// payload, an event batch without the timestamps the leader added), so a
// retry matches its first attempt and a different request under the same
// key does not.
type envelope struct {
	typ, caller, idemKey string
	fingerprint          []byte
	payload              []byte
}

const envelopeVersion = 1

// encodedLen is the exact size of e's encoding.
func (e envelope) encodedLen() int {
	n := 1 + len(e.payload) + uvarintLen(uint64(len(e.fingerprint))) + len(e.fingerprint)
	for _, s := range []string{e.typ, e.caller, e.idemKey} {
		n += uvarintLen(uint64(len(s))) + len(s)
	}
	return n
}

func (e envelope) encode() []byte {
	b := make([]byte, 0, e.encodedLen())
	b = append(b, envelopeVersion)
	b = appendString(b, e.typ)
	b = appendString(b, e.caller)
	b = appendString(b, e.idemKey)
	b = appendBytes(b, e.fingerprint)
	return append(b, e.payload...)
}

// decodeEnvelope parses an entry. Every node sees the same bytes, so a
// failure is the same everywhere and rejects the entry without halting.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	r := reader{b: b}
	if v := r.byte(); v != envelopeVersion {
		return e, fmt.Errorf("%w: command envelope version %d", ErrCorrupt, v)
	}
	e.typ = r.string(maxTypeBytes)
	e.caller = r.string(maxIDBytes)
	e.idemKey = r.string(maxIdemKeyBytes)
	e.fingerprint = r.bytes(fingerprintSize)
	e.payload = r.rest()
	if r.err == nil && (e.idemKey == "") != (len(e.fingerprint) == 0) {
		r.fail("idempotency key and fingerprint must come together")
	}
	if r.err != nil {
		return e, fmt.Errorf("%w: command envelope: %w", ErrCorrupt, r.err)
	}
	return e, nil
}

// reader decodes the package's binary formats: uvarints, length-prefixed
// strings and fixed-width integers. The first error sticks, so a decoder
// reads every field and checks once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n != uvarintLen(v) { // one encoding per value
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// bytes reads a length-prefixed field of at most limit bytes. The result
// aliases the input.
func (r *reader) bytes(limit int) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(r.b)) {
		r.fail("field of %d bytes (limit %d, %d left)", n, limit, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string(limit int) string { return string(r.bytes(limit)) }

func (r *reader) rest() []byte {
	v := r.b
	r.b = nil
	return v
}

// done fails unless every byte was consumed.
func (r *reader) done() {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// checkID validates a caller, node or event id: 1..256 bytes, printable,
// no NUL (which separates fields in store keys).
func checkID(what, s string) error {
	if s == "" || len(s) > maxIDBytes {
		return invalid(nil, "%s must be 1..%d bytes, got %d", what, maxIDBytes, len(s))
	}
	if strings.ContainsFunc(s, isControl) {
		return invalid(nil, "%s %s contains control characters", what, quote(s))
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkIdemKey validates an optional idempotency key.
func checkIdemKey(k string) error {
	if len(k) > maxIdemKeyBytes {
		return invalid(ErrTooLarge, "idempotency key of %d bytes (limit %d)", len(k), maxIdemKeyBytes)
	}
	if strings.ContainsFunc(k, isControl) {
		return invalid(nil, "idempotency key %s contains control characters", quote(k))
	}
	return nil
}

// checkTypeName validates a command type name: 1..64 bytes of lower-case
// letters, digits, '.', '_' and '-', starting with a letter. Names become
// store key segments, so they never contain '/'.
func checkTypeName(name string) error {
	ok := name != "" && len(name) <= maxTypeBytes && name[0] >= 'a' && name[0] <= 'z'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return invalid(ErrUnknownCommand, "command type %s must be 1..%d of [a-z0-9._-], starting with a letter", quote(name), maxTypeBytes)
	}
	return nil
}

// reservedPrefix marks the command types the node itself registers.
const reservedPrefix = "consensus."

func isReserved(name string) bool { return strings.HasPrefix(name, reservedPrefix) }
